package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// genName is the file, shared through mmap by every process of a directory,
// that keeps forwarders' local caches coherent (DESIGN.md, handoff).
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
	// genMinLog and genMaxLog bound the table: 64Ki slots (256 KiB) to 1Mi
	// slots (4 MiB). A write invalidates the cached entries of every key
	// in its slot, so more slots mean fewer needless misses.
	genMinLog = 16
	genMaxLog = 20
)

// generations is a mapped genName.
type generations struct {
	mem  []byte
	mask uint64
	// watched is set in the owner when the first forwarder connects, before
	// it is served. Until then no process can hold a value stamped with this
	// owner's epoch, so writes skip their bumps: a cache used by one process
	// pays nothing for the others' coherence. A writer reads the flag after
	// its commit, so a write that skipped its bump was applied before any
	// forwarder could fetch (atomics are sequentially consistent).
	watched atomic.Bool
}

// genLogFor sizes the table from the size limit: a slot per 512 bytes of
// limit, under 1% of it, within the bounds.
func genLogFor(limit int64) int {
	n := bits.Len64(uint64(limit/512)) - 1
	return min(max(n, genMinLog), genMaxLog)
}

// createGenerations maps the table of dir, creating it with 2^log slots if
// it is missing. Only the owner calls it. An existing table keeps its size,
// since forwarders may have it mapped; one that is damaged is replaced
// (no forwarder can have mapped it, they refuse it too).
func createGenerations(dir string, log int) (*generations, error) {
	path := filepath.Join(dir, genName)
	if g, err := mapGenerations(path); err == nil {
		return g, nil
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

// openGenerations maps the table of dir, which the owner created. A
// forwarder without it has no local cache.
func openGenerations(dir string) (*generations, error) {
	return mapGenerations(filepath.Join(dir, genName))
}

func mapGenerations(path string) (*generations, error) {
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
	g := &generations{mem: mem, mask: 1<<log - 1}
	// Unmapped once nothing refers to it: a call still in flight when its
	// Cache closes must not touch unmapped memory.
	runtime.AddCleanup(g, func(mem []byte) { unix.Munmap(mem) }, mem)
	return g, nil
}

// word returns the counter at byte offset off. The mapping is page aligned
// and off a multiple of 4, so atomic access is sound.
func (g *generations) word(off uint64) *uint32 {
	return (*uint32)(unsafe.Pointer(&g.mem[off]))
}

func (g *generations) slot(hash uint64) *uint32 {
	return g.word(genHeader + 4*(hash&g.mask))
}

// stamp is what a cached entry remembers of the table.
type stamp struct{ epoch, gen uint32 }

// read returns the stamp of a key's hash now.
func (g *generations) read(hash uint64) stamp {
	return stamp{epoch: atomic.LoadUint32(g.word(12)), gen: atomic.LoadUint32(g.slot(hash))}
}

// bump invalidates what forwarders cached of the keys in hash's slot.
func (g *generations) bump(hash uint64) { atomic.AddUint32(g.slot(hash), 1) }

// watch records that a forwarder connected: from now on writes bump.
func (g *generations) watch() { g.watched.Store(true) }

// bumpEpoch invalidates everything forwarders cached.
func (g *generations) bumpEpoch() { atomic.AddUint32(g.word(12), 1) }
