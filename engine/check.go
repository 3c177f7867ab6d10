package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/diskcache-go/diskcache/codec"
	"github.com/diskcache-go/diskcache/ttl"
	"github.com/diskcache-go/diskcache/vlog"
)

// The offline Check: every block, record and index entry of a store that
// no process has open. What Open does about damage is in repair.go.

// CheckProblem is one thing wrong with a store.
type CheckProblem struct {
	File string `json:"file,omitempty"` // the damaged file, relative to the cache directory
	Key  string `json:"key,omitempty"`  // the entry at fault, if one is
	What string `json:"what"`
}

func (p CheckProblem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File + ": ")
	}
	if p.Key != "" {
		fmt.Fprintf(&b, "key %q: ", truncKey(p.Key))
	}
	b.WriteString(p.What)
	return b.String()
}

// CheckReport is what Check found in a cache directory.
type CheckReport struct {
	Dir        string `json:"dir"`
	StoreFound bool   `json:"store_found"` // false: no store yet (nothing written)

	Tables       int    `json:"tables"`      // table files in store/
	TableBytes   int64  `json:"table_bytes"` //
	Logs         int    `json:"logs"`        // WAL files, recycled ones included
	LogBytes     int64  `json:"log_bytes"`   //
	Segments     int    `json:"segments"`    // value log segments in store/values/
	SegmentBytes int64  `json:"segment_bytes"`
	Manifest     string `json:"manifest,omitempty"`
	// Format is the store's layout version (keys.go): 2, or 1 for a store
	// written before the bucketed keyspace, which this version still
	// reads; 0 when it is not recorded or not known.
	Format int `json:"format"`

	Entries      int64 `json:"entries"`       // records found by the scan
	Bytes        int64 `json:"bytes"`         // their stored bytes (keys and records), as Stats counts them
	Expiring     int64 `json:"expiring"`      // records with an expiry
	Expired      int64 `json:"expired"`       // of those, expired and not yet swept
	IndexEntries int64 `json:"index_entries"` // expiry index entries

	// CleanClose: the last process closed the store; SavedEntries and
	// SavedBytes are the counts it saved, which Open trusts. After a crash
	// Open recounts instead.
	CleanClose   bool  `json:"clean_close"`
	SavedEntries int64 `json:"saved_entries"`
	SavedBytes   int64 `json:"saved_bytes"`

	Problems []CheckProblem `json:"problems"`        // damage; none means the store is sound
	Notes    []string       `json:"notes,omitempty"` // worth knowing, not damage
	Reset    bool           `json:"reset"`           // the damaged store was deleted and recreated
	Took     time.Duration  `json:"took_ns"`

	mu     sync.Mutex // guards Problems while Pebble reports corruption
	layout keyLayout  // the store's, once checkMeta has read it
}

// Damaged reports whether Check found any problem.
func (r *CheckReport) Damaged() bool { return len(r.Problems) > 0 }

func (r *CheckReport) problem(p CheckProblem) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// Pebble reports a bad block once per read that meets it: once is enough.
	for _, q := range r.Problems {
		if q == p {
			return
		}
	}
	r.Problems = append(r.Problems, p)
}

// full reports whether the report lists as many problems as it may.
func (r *CheckReport) full() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.Problems) >= checkProblemLimit
}

func (r *CheckReport) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// checkProblemLimit bounds the problems one report lists: a store with a
// damaged table can have thousands of damaged records.
const checkProblemLimit = 100

// Check verifies the store of the cache directory dir: Pebble opens it
// (which replays the WAL and checks the MANIFEST), every block of every
// table is read and its checksum checked, every record decodes (a record
// of version 1 with its own checksum), every reference to the value log
// finds its entry with the entry's checksum, every expiry index entry
// points at a record with that
// expiry and every expiring record has its index entry, the counts and key
// filter a clean Close saved agree with the scan, and the format metadata
// is there. A damaged store gives a report with Problems, not an error;
// errors are for a check that could not run.
//
// Check needs the directory to itself: if a process has it open, Check
// fails with ErrOwned and that process's PID. It opens Pebble read-only
// and writes nothing but the owner lock, unless opts.ResetIfDamaged is set
// and the store is damaged: then it deletes store/ (nothing else) and
// creates an empty store, and Report.Reset says so. opts may be nil.
func Check(ctx context.Context, dir string, opts *Options) (*CheckReport, error) {
	o := opts.withDefaults()
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("diskcache: check %s: %w", dir, err)
	}
	if fi, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("diskcache: check %s: %w", dir, err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("diskcache: check %s: not a directory", dir)
	}
	lock, err := lockDir(abs)
	if err != nil {
		if errors.Is(err, ErrOwned) {
			return nil, fmt.Errorf("%w; check needs the directory to itself: stop that process first", err)
		}
		return nil, err
	}
	locked := true
	defer func() {
		if locked {
			lock.release()
		}
	}()
	start := time.Now()
	r := &CheckReport{Dir: abs}
	fsys := o.filesystem()
	path := filepath.Join(abs, storeDir)
	if fi, err := fsys.Stat(path); err == nil && !fi.IsDir() {
		return nil, fmt.Errorf("diskcache: check %s: %s is not a directory", dir, path)
	}
	r.inventory(fsys, abs, path)
	if r.StoreFound {
		if err := r.checkStore(ctx, &o, fsys, path); err != nil {
			return r, err
		}
	}
	if r.Damaged() && o.ResetIfDamaged {
		// Damage in the logs only is left to openStore, which with
		// ResetIfDamaged cuts a damaged newest log and keeps the tables,
		// and resets the store only if that is not enough.
		logsOnly := true
		for _, p := range r.Problems {
			logsOnly = logsOnly && strings.HasSuffix(p.File, ".log")
		}
		if !logsOnly {
			o.Logger.Warn("diskcache: check: the store is damaged; deleting and recreating it", "dir", abs, "problems", len(r.Problems))
			if err := resetStore(fsys, abs); err != nil {
				return r, err
			}
		}
		s, err := openStore(abs, o, lock) // opens or creates the store; Close releases the lock
		locked = false
		if err != nil {
			lock.release()
			return r, err
		}
		if err := s.Close(); err != nil {
			return r, err
		}
		r.Reset = true
	}
	r.Took = time.Since(start)
	return r, nil
}

// inventory lists the store's files and notes files that are not the
// cache's.
func (r *CheckReport) inventory(fsys vfs.FS, dir, path string) {
	if names, err := fsys.List(dir); err == nil {
		sort.Strings(names)
		for _, n := range names {
			switch n {
			case storeDir, lockName, sockName, epochName, oldGenName, probeName:
			default:
				r.note("%s is not the cache's: left alone", n)
			}
		}
	}
	names, err := fsys.List(path)
	if err != nil {
		return
	}
	r.StoreFound = true
	r.Manifest = currentManifest(fsys, path)
	sort.Strings(names)
	for _, n := range names {
		var size int64
		if fi, err := fsys.Stat(fsys.PathJoin(path, n)); err == nil {
			size = fi.Size()
		}
		switch {
		case strings.HasSuffix(n, ".sst"):
			r.Tables++
			r.TableBytes += size
		case strings.HasSuffix(n, ".log"):
			r.Logs++
			r.LogBytes += size
		case n == valuesDir || n == accessFile || n == presenceFile:
		case n == "LOCK" || strings.HasPrefix(n, "MANIFEST-") || strings.HasPrefix(n, "OPTIONS-") ||
			strings.HasPrefix(n, "marker.") || strings.HasSuffix(n, ".blob"):
		default:
			r.note("%s is not the store's (Pebble deletes files in store/ named like its own)", filepath.Join(storeDir, n))
		}
	}
}

// checkStore opens Pebble read-only on path and checks what it holds. It
// returns an error only for a check that could not run.
func (r *CheckReport) checkStore(ctx context.Context, o *Options, fsys vfs.FS, path string) error {
	if p := checkMarker(fsys, path); p != nil {
		r.problem(*p)
		return nil
	}
	po := pebbleOptions(o, durability{fs: fsys, write: pebble.Sync})
	po.ReadOnly = true
	var h health
	h.attach(po, o.Logger, r.Dir)
	po.EventListener.DataCorruption = func(info pebble.DataCorruptionInfo) {
		r.problem(CheckProblem{File: filepath.Join(storeDir, filepath.Base(info.Path)), What: fmt.Sprint(info.Details)})
	}
	db, err := openReadOnly(path, po)
	if err != nil {
		// A torn OPTIONS file fails the open; Open removes it and tries
		// again (openPebbleDB), and the check reads on past it.
		if torn, terr := tornOptions(fsys, path); terr == nil && torn != "" {
			r.note("%s is cut short (a power cut: the default mode does not sync it); the next Open removes it", filepath.Join(storeDir, torn))
			fsys = hiddenFS{fsys, path, torn}
			po.FS = fsys
			db, err = openReadOnly(path, po)
		}
	}
	if err != nil {
		ps := diagnoseOpen(fsys, path, err)
		if len(ps) == 0 {
			return fmt.Errorf("diskcache: check %s: %w", r.Dir, err)
		}
		for _, p := range ps {
			r.problem(p)
		}
		return nil
	}
	defer db.Close()
	for _, p := range checkLogs(fsys, path) {
		r.problem(p)
	}
	presence := r.checkMeta(db, fsys)
	values, err := r.openValues(fsys, path)
	if err != nil {
		return err
	}
	if values != nil {
		defer values.Close()
	}
	if err := r.scanData(ctx, db, values, presence); err != nil {
		return err
	}
	if err := r.scanIndex(ctx, db); err != nil {
		return err
	}
	if err := db.CheckLevels(nil); err != nil {
		r.problem(CheckProblem{File: storeDir, What: "the levels are inconsistent: " + err.Error()})
	}
	if r.CleanClose && (r.SavedEntries != r.Entries || r.SavedBytes != r.Bytes) {
		r.problem(CheckProblem{Key: string(metaState), What: fmt.Sprintf(
			"the counts saved at the last Close (%d entries, %d bytes) differ from the scan (%d, %d): Len would be wrong",
			r.SavedEntries, r.SavedBytes, r.Entries, r.Bytes)})
	}
	if r.full() {
		r.note("only the first %d problems are listed", checkProblemLimit)
	}
	return nil
}

// openReadOnly opens Pebble with po, turning a Pebble panic into an error.
func openReadOnly(path string, po *pebble.Options) (db *pebble.DB, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("pebble: %v", p)
		}
	}()
	return pebble.Open(path, po)
}

// checkMeta checks the metadata keys and returns the saved key filter, if
// the last close was clean and saved one.
func (r *CheckReport) checkMeta(db *pebble.DB, fsys vfs.FS) *presence {
	get := func(k []byte) ([]byte, bool) {
		v, closer, err := db.Get(k)
		if err != nil {
			if !errors.Is(err, pebble.ErrNotFound) {
				r.problem(CheckProblem{Key: string(k), What: "cannot be read: " + err.Error()})
			}
			return nil, false
		}
		defer closer.Close()
		return bytes.Clone(v), true
	}
	if v, ok := get(metaFormat); !ok {
		r.problem(CheckProblem{Key: string(metaFormat), What: "the store format is not recorded"})
	} else if l, err := layoutOf(v); err != nil {
		r.problem(CheckProblem{Key: string(metaFormat), What: err.Error()})
	} else {
		r.layout, r.Format = l, int(l.format)
	}
	if v, ok := get(metaEpoch); ok && len(v) != 8 {
		r.problem(CheckProblem{Key: string(metaEpoch), What: fmt.Sprintf("clock epoch of %d bytes, want 8", len(v))})
	}
	if v, ok := get(metaFootprint); ok {
		if _, ok := decodeFootprint(v); !ok {
			r.note("the saved footprint estimate (%d bytes) is not one: Open measures afresh", len(v))
		}
	}
	st, ok := get(metaState)
	switch {
	case !ok:
		r.problem(CheckProblem{Key: string(metaState), What: "the counts are not recorded"})
		return nil
	case len(st) != stateLen && len(st) != legacyStateLen:
		r.problem(CheckProblem{Key: string(metaState), What: fmt.Sprintf("%d bytes, want %d", len(st), stateLen)})
		return nil
	case st[0] != 1:
		r.note("the store was not closed cleanly (a crash or a process still starting): Open recounts it")
		return nil
	}
	n, err := decodeCounts(st[1:17])
	if err != nil {
		r.problem(CheckProblem{Key: string(metaState), What: err.Error()})
		return nil
	}
	r.CleanClose, r.SavedEntries, r.SavedBytes = true, n.entries, n.bytes
	if len(st) == stateLen {
		// Today's stores keep the filter in a side file.
		p, err := readPresenceFile(fsys, r.Dir, st[17:])
		if err != nil && !errors.Is(err, errNoFilter) {
			r.note("the saved key filter is not used (%v): Open rebuilds it", err)
		}
		return p
	}
	v, ok := get(metaPresence)
	if !ok {
		return nil
	}
	p, err := decodePresence(v)
	if err != nil {
		r.note("the saved key filter does not decode (%v): Open rebuilds it", err)
		return nil
	}
	return p
}

// scanData reads every record: its key, header, value (and the checksum of
// a version 1 record or of a value log entry) and expiry index entry, and
// that the saved key filter has it.
func (r *CheckReport) scanData(ctx context.Context, db *pebble.DB, values *vlog.Log, p *presence) error {
	// The largest value any cache accepts, whatever limit wrote this one.
	cd, err := codec.New(codec.Config{MaxValue: maxValueCeiling})
	if err != nil {
		return err
	}
	if r.Format == 0 {
		r.note("the records are not checked: without the store's format their keys cannot be read")
		return nil
	}
	l := r.layout
	lo, hi := dataSpan()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	defer it.Close()
	now := time.Now().UnixNano()
	var buf, kb []byte
	for valid := it.First(); valid && !r.full(); valid = it.Next() {
		if r.Entries%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		k := it.Key()
		if len(k) < l.header {
			r.problem(CheckProblem{Key: string(k), What: fmt.Sprintf("a data key of %d bytes, shorter than its header", len(k))})
			continue
		}
		uk := string(l.userKey(k))
		if kb = l.dataKey(kb[:0], uk); !bytes.Equal(kb, k) {
			r.problem(CheckProblem{Key: uk, What: "the hash in the data key is not the key's"})
		}
		v, err := it.ValueAndErr()
		if err != nil {
			r.problem(CheckProblem{Key: uk, What: "cannot be read: " + err.Error()})
			continue
		}
		r.Entries++
		r.Bytes += int64(len(k) + recordSize(v))
		hdr, _, err := decodeWith(cd, values, nil, []byte(uk), v, &buf)
		if err != nil {
			r.problem(CheckProblem{Key: uk, What: "the record does not decode: " + err.Error()})
			continue
		}
		if p != nil && !p.mayContain(l.hash(k)) {
			r.problem(CheckProblem{Key: string(metaPresence), What: fmt.Sprintf("the saved key filter misses %q: Get would call it missing", truncKey(uk))})
		}
		if hdr.Expiry == 0 {
			continue
		}
		r.Expiring++
		if hdr.Expired(now) {
			r.Expired++
		}
		ik := ttl.AppendIndexKey(nil, hdr.Expiry, k[1:])
		if _, closer, err := db.Get(ik); err != nil {
			if errors.Is(err, pebble.ErrNotFound) {
				r.problem(CheckProblem{Key: uk, What: "expires but has no expiry index entry: the sweeper would never delete it"})
			} else {
				r.problem(CheckProblem{Key: uk, What: "its expiry index entry cannot be read: " + err.Error()})
			}
		} else {
			closer.Close()
		}
	}
	if err := it.Error(); err != nil {
		r.problem(CheckProblem{File: storeDir, What: "the scan of the records stopped: " + err.Error()})
	}
	return nil
}

// openValues opens the value log of the store at path, if there is one,
// and checks that each segment's entries read back; nil if there is none.
func (r *CheckReport) openValues(fsys vfs.FS, path string) (*vlog.Log, error) {
	dir := filepath.Join(path, valuesDir)
	if _, err := fsys.Stat(dir); err != nil {
		return nil, nil
	}
	l, err := vlog.Open(fsys, dir, vlog.Options{SegmentSize: segmentSizeFor(0)})
	if err != nil {
		return nil, fmt.Errorf("diskcache: check %s: %w", r.Dir, err)
	}
	for _, s := range l.Segments() {
		r.Segments++
		r.SegmentBytes += s.Size
		if err := l.Scan(s.ID, func([]byte, []byte, codec.Ref) error { return nil }); err != nil {
			r.problem(CheckProblem{File: filepath.Join(storeDir, valuesDir, filepath.Base(s.Path)), What: err.Error()})
		}
	}
	return l, nil
}

// scanIndex checks that every expiry index entry points at a record that
// expires at that time.
func (r *CheckReport) scanIndex(ctx context.Context, db *pebble.DB) error {
	if r.Format == 0 {
		return nil // scanData noted it
	}
	l := r.layout
	lo, hi := ttl.IndexSpan()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	defer it.Close()
	for valid := it.First(); valid && !r.full(); valid = it.Next() {
		if r.IndexEntries%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		r.IndexEntries++
		expiry, ref, err := ttl.ParseIndexKey(it.Key())
		if err != nil || len(ref) < l.header-1 {
			r.problem(CheckProblem{Key: string(it.Key()), What: "an expiry index entry that does not parse"})
			continue
		}
		dk := append([]byte{dataPrefix}, ref...)
		uk := string(l.userKey(dk))
		v, closer, err := db.Get(dk)
		if errors.Is(err, pebble.ErrNotFound) {
			r.problem(CheckProblem{Key: uk, What: fmt.Sprintf("an expiry index entry (%s) for a key that is not stored", time.Unix(0, expiry).UTC().Format(time.RFC3339Nano))})
			continue
		}
		if err != nil {
			r.problem(CheckProblem{Key: uk, What: "cannot be read: " + err.Error()})
			continue
		}
		h, err := codec.DecodeHeader(v)
		closer.Close()
		if err == nil && h.Expiry != expiry {
			r.problem(CheckProblem{Key: uk, What: fmt.Sprintf("an expiry index entry (%s) that is not the record's expiry (%d)",
				time.Unix(0, expiry).UTC().Format(time.RFC3339Nano), h.Expiry)})
		}
	}
	if err := it.Error(); err != nil {
		r.problem(CheckProblem{File: storeDir, What: "the scan of the expiry index stopped: " + err.Error()})
	}
	return nil
}
