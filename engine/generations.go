package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// genName is the file, shared through mmap by every process of a directory,
// that keeps forwarders' local caches coherent (docs/ARCHITECTURE.md).
//
// It holds a generation counter per slot of the key hash space and one
// epoch. The owner bumps the slot of every key it writes or deletes after
// the write is applied and before the call returns; Clear and a new owner
// bump the epoch. A forwarder reads the slot (and the epoch) before it asks
// the owner for a value, and caches the value with them; a cached value is
// good while both are unchanged. So once a write has returned anywhere, no
// process serves the value it replaced: either the forwarder fetched before
// the write was applied, and then read the generation before the bump, or
// it fetched after. A hit costs two loads from shared memory and no round
// trip, which invalidation messages over the socket cannot give: a message
// may still be in flight when the writer's call returns.
const genName = "owner.gen"

// The layout of genName, little-endian (the file never leaves the machine):
//
//	[0:8)   magic
//	[8:12)  log2 of the number of slots
//	[12:16) epoch
//	[64:)   one uint32 generation per slot
//
// A uint32 wraps after 4 billion writes to one slot, which is the only way
// a stale entry could match again.
const (
	genMagic  = "dcgen\x00\x00\x01"
	genHeader = 64
	// genMinLog and genMaxLog bound the table: 16Ki slots (64 KiB) to 1Mi
	// slots (4 MiB). A write invalidates the cached entries of every key
	// in its slot, so more slots mean fewer needless misses.
	genMinLog = 14
	genMaxLog = 20
)

// generations is the owner's or a forwarder's view of genName.
//
// The owner creates the table only when the first forwarder connects
// (watch): a cache used by one process, or by short-lived processes one
// at a time, never has one. A table left by an earlier owner is mapped at
// Open, since forwarders of that owner may hold values stamped with it,
// and its epoch bumped.
type generations struct {
	m atomic.Pointer[genMap] // nil until mapped

	// watched is set in the owner when the first forwarder connects, once
	// the table is mapped and before the connection is served. Until then
	// no process can hold a value stamped with this owner's epoch, so
	// writes skip their bumps: a cache used by one process pays nothing for
	// the others' coherence. A writer reads the flag after its commit, so a
	// write that skipped its bump was applied before any forwarder could
	// fetch (atomics are sequentially consistent).
	watched atomic.Bool

	dir  string
	keys func() int64 // what the store holds, to size a new table
	log  *slog.Logger
	mu   sync.Mutex // one creation at a time
}

// genMap is a mapped table.
type genMap struct {
	mem  []byte
	mask uint64
}

// genLogFor sizes a new table from the keys the store holds: two slots a
// key, within the bounds. A table cannot grow once forwarders map it.
func genLogFor(keys int64) int {
	n := bits.Len64(uint64(max(2*keys, 1)))
	return min(max(n, genMinLog), genMaxLog)
}

// ownerGenerations returns the owner's view of dir's table. If an earlier
// owner left one, it is mapped now and its epoch bumped: what forwarders
// cached under that owner may miss writes it applied but did not
// acknowledge before it died. A damaged table is left for watch to replace
// (no forwarder can have mapped it: they refuse it too).
func ownerGenerations(dir string, keys func() int64, log *slog.Logger) (*generations, error) {
	g := &generations{dir: dir, keys: keys, log: log}
	m, err := mapGenerations(filepath.Join(dir, genName))
	switch {
	case err == nil:
		g.m.Store(m)
		g.bumpEpoch()
	case errors.Is(err, os.ErrNotExist) || errors.Is(err, errBadGenerations):
	default:
		return nil, err
	}
	return g, nil
}

// createGenerations maps the table of dir, creating it with 2^log slots if
// it is missing or damaged. An existing table keeps its size, since
// forwarders may have it mapped.
func createGenerations(dir string, log int) (*genMap, error) {
	path := filepath.Join(dir, genName)
	if m, err := mapGenerations(path); err == nil {
		return m, nil
	} else if !errors.Is(err, os.ErrNotExist) && !errors.Is(err, errBadGenerations) {
		return nil, err
	}
	// Write the new table beside it and rename it into place, so that a
	// forwarder never maps a table without its header.
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("diskcache: create %s: %w", tmp, err)
	}
	hdr := make([]byte, genHeader)
	copy(hdr, genMagic)
	binary.LittleEndian.PutUint32(hdr[8:], uint32(log))
	_, err = f.Write(hdr)
	if err == nil {
		err = f.Truncate(genHeader + 4<<log)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("diskcache: create %s: %w", path, err)
	}
	return mapGenerations(path)
}

var errBadGenerations = errors.New("not a generation table")

// openGenerations maps the table of dir, which the owner created when this
// forwarder connected. A forwarder without it has no local cache.
func openGenerations(dir string) (*generations, error) {
	m, err := mapGenerations(filepath.Join(dir, genName))
	if err != nil {
		return nil, err
	}
	g := &generations{dir: dir}
	g.m.Store(m)
	return g, nil
}

func mapGenerations(path string) (*genMap, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("diskcache: %s: %w", path, err)
	}
	hdr := make([]byte, genHeader)
	if _, err := f.ReadAt(hdr, 0); err != nil || string(hdr[:8]) != genMagic {
		return nil, fmt.Errorf("diskcache: %s: %w", path, errBadGenerations)
	}
	log := int(binary.LittleEndian.Uint32(hdr[8:]))
	if log < genMinLog || log > genMaxLog || fi.Size() != genHeader+4<<log {
		return nil, fmt.Errorf("diskcache: %s: %w (size %d)", path, errBadGenerations, fi.Size())
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("diskcache: map %s: %w", path, err)
	}
	m := &genMap{mem: mem, mask: 1<<log - 1}
	// Unmapped once nothing refers to it: a call still in flight when its
	// Cache closes must not touch unmapped memory.
	runtime.AddCleanup(m, func(mem []byte) { unix.Munmap(mem) }, mem)
	return m, nil
}

// word returns the counter at byte offset off. The mapping is page aligned
// and off a multiple of 4, so atomic access is sound.
func (m *genMap) word(off uint64) *uint32 {
	return (*uint32)(unsafe.Pointer(&m.mem[off]))
}

func (m *genMap) slot(hash uint64) *uint32 {
	return m.word(genHeader + 4*(hash&m.mask))
}

// stamp is what a cached entry remembers of the table.
type stamp struct{ epoch, gen uint32 }

// read returns the stamp of a key's hash now. Only forwarders read, and
// theirs is always mapped.
func (g *generations) read(hash uint64) stamp {
	m := g.m.Load()
	return stamp{epoch: atomic.LoadUint32(m.word(12)), gen: atomic.LoadUint32(m.slot(hash))}
}

// bump invalidates what forwarders cached of the keys in hash's slot.
func (g *generations) bump(hash uint64) {
	if m := g.m.Load(); m != nil {
		atomic.AddUint32(m.slot(hash), 1)
	}
}

// watch runs in the owner for each connection before it is served: the
// first one creates and maps the table, and from then on writes bump. If
// the table cannot be created, forwarders find none and go without a local
// cache, which is still coherent.
func (g *generations) watch() {
	if g.watched.Load() {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m.Load() == nil {
		m, err := createGenerations(g.dir, genLogFor(g.keys()))
		if err != nil {
			g.log.Warn("diskcache: no generation table: forwarders go without a local cache", "err", err)
			return
		}
		g.m.Store(m)
	}
	g.watched.Store(true)
}

// bumpEpoch invalidates everything forwarders cached. Without a table no
// forwarder caches anything.
func (g *generations) bumpEpoch() {
	if m := g.m.Load(); m != nil {
		atomic.AddUint32(m.word(12), 1)
	}
}
