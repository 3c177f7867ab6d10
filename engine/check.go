package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/record"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/wal"

	"github.com/diskcache-go/diskcache/codec"
	"github.com/diskcache-go/diskcache/ttl"
	"github.com/diskcache-go/diskcache/vlog"
)

// A damaged store, and what Open and Check do about it.
//
// Open finds damage that Pebble meets while opening: a MANIFEST that is
// missing or cut short (Pebble then sees table files that are gone), the
// marker that names the MANIFEST missing while tables remain (Pebble would
// otherwise start an empty store and delete the tables), a table file that
// is missing or of the wrong size, a WAL record that is damaged in the
// middle of a log, or a store of another format. The error wraps
// ErrCorrupt and names the file. A flipped bit inside a table is found
// only when its block is read: that read fails with ErrCorrupt, and Check
// reads every block.
//
// Pebble cannot tell some damage from a crash, so neither can we: a log
// cut short, or a bad record at its very end, reads as the tail of a write
// that a crash interrupted, and a deleted log loses the writes that were
// not yet in tables. Those writes are gone without an error, and the rest
// is consistent (Len is recounted).
//
// A cache can be rebuilt, so Options.ResetIfDamaged (and diskcache check
// --repair) deletes a damaged store/ folder and starts an empty one. Only
// store/ is deleted; files next to it are not the cache's and stay. When
// the damage is in the newest log alone (a power cut in the default mode
// leaves holes there), the log is cut at its first damaged record instead,
// and the rest of the store is kept.

// openPebbleOrReset opens Pebble; with Options.ResetIfDamaged it deletes
// and recreates a damaged store instead of failing. Damage is ErrCorrupt
// only: an I/O error (a full disk, a permission) never resets a cache.
func (c *store) openPebbleOrReset() error {
	err := c.guard(c.openPebble)
	if err == nil || !c.opts.ResetIfDamaged || !errors.Is(err, ErrCorrupt) || errors.Is(err, ErrStoreFailed) {
		return err
	}
	fsys := c.opts.durability().fs
	path := filepath.Join(c.dir, storeDir)
	if name, kept, ok := cutNewestLog(fsys, path); ok {
		// The least that can be given up first: the writes in the newest
		// log from its first damaged record on (a power cut in the default
		// mode leaves holes there), not the whole store.
		c.log.Warn("diskcache: the newest log is damaged; dropping it from the first damaged record (Options.ResetIfDamaged)",
			"err", err, "log", name, "bytes_kept", kept)
		c.keys = keyState{}
		c.lim = newLimiter(&c.opts)
		if err = c.guard(c.openPebble); err == nil || !errors.Is(err, ErrCorrupt) {
			return err
		}
	}
	c.log.Warn("diskcache: the store is damaged; deleting and recreating it (Options.ResetIfDamaged)", "err", err)
	if rerr := resetStore(fsys, c.dir); rerr != nil {
		return fmt.Errorf("%w; and resetting it failed: %w", err, rerr)
	}
	// The failed attempt may have loaded part of the old store's state.
	c.keys = keyState{}
	c.lim = newLimiter(&c.opts)
	return c.guard(c.openPebble)
}

// cutNewestLog cuts the newest log of the store at path just before its
// first damaged record, when that log is the only damaged one, and reports
// the log and the bytes kept. The cut copy replaces the log by a rename,
// so a crash meanwhile leaves the log as it was.
func cutNewestLog(fsys vfs.FS, path string) (name string, kept int64, ok bool) {
	logs, err := wal.Scan(wal.Dir{FS: fsys, Dirname: path})
	if err != nil || len(logs) == 0 {
		return "", 0, false
	}
	sort.Slice(logs, func(i, j int) bool { return logs[i].Num < logs[j].Num })
	ps := checkLogs(fsys, path)
	newest := logs[len(logs)-1]
	if len(ps) != 1 || newest.NumSegments() != 1 {
		return "", 0, false
	}
	_, name = newest.SegmentLocation(0)
	if ps[0].File != filepath.Join(storeDir, filepath.Base(name)) {
		return "", 0, false
	}
	kept = firstDamage(newest)
	if kept < 0 {
		return "", 0, false
	}
	err = copyPrefix(fsys, name, name+".cut", kept)
	if err == nil {
		err = fsys.Rename(name+".cut", name)
	}
	if err != nil {
		fsys.Remove(name + ".cut")
		return "", 0, false
	}
	return filepath.Base(name), kept, true
}

// firstDamage returns the offset of the first damaged record of ll, or -1
// if it reads to its end.
func firstDamage(ll wal.LogicalLog) int64 {
	r := ll.OpenForRead()
	defer r.Close()
	for {
		rec, off, err := r.NextRecord()
		if err == nil {
			_, err = io.Copy(io.Discard, rec)
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			return -1
		default:
			return off.Physical
		}
	}
}

// copyPrefix writes the first n bytes of src to a new file dst and syncs
// it.
func copyPrefix(fsys vfs.FS, src, dst string, n int64) error {
	in, err := fsys.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := fsys.Create(dst, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, io.LimitReader(in, n))
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// resetStore deletes the store folder of the cache directory dir, and
// nothing else; the next open of the store creates it empty. The caller
// holds the owner lock, so no process has the store open.
func resetStore(fsys vfs.FS, dir string) error {
	path := filepath.Join(dir, storeDir)
	if err := fsys.RemoveAll(path); err != nil {
		return fmt.Errorf("diskcache: reset %s: %w", path, err)
	}
	return nil
}

// preflight checks what Pebble cannot be trusted to notice or would wait on
// for ever, before it opens the store at path: room on the disk (see
// checkFreeSpace), and the MANIFEST marker of an existing store.
func preflight(fsys vfs.FS, path string, need uint64) error {
	if err := checkFreeSpace(fsys, filepath.Dir(path), need); err != nil {
		return err
	}
	if p := checkMarker(fsys, path); p != nil {
		return fmt.Errorf("%w: %s", ErrCorrupt, p)
	}
	return nil
}

// checkMarker reports a store folder that holds tables, logs or a MANIFEST
// but no marker naming the current MANIFEST. Pebble would take the folder
// for a new store, and delete the tables as obsolete.
func checkMarker(fsys vfs.FS, path string) *CheckProblem {
	names, err := fsys.List(path)
	if err != nil {
		return nil // no folder yet, or unreadable: pebble.Open says which
	}
	var data []string
	for _, n := range names {
		if strings.HasPrefix(n, "marker.manifest.") || n == "CURRENT" {
			return nil
		}
		if strings.HasSuffix(n, ".sst") || strings.HasSuffix(n, ".log") || strings.HasPrefix(n, "MANIFEST-") {
			data = append(data, n)
		}
	}
	if len(data) == 0 {
		return nil
	}
	sort.Strings(data)
	return &CheckProblem{
		File: filepath.Join(storeDir, "marker.manifest.*"),
		What: fmt.Sprintf("missing: the store holds %d files (%s...) but nothing names its current MANIFEST", len(data), data[0]),
	}
}

// damaged explains an error of pebble.Open on the store at path. If it
// shows damage, the result wraps ErrCorrupt and names the file; other
// errors (I/O, permissions) come back as they were.
func damaged(fsys vfs.FS, path string, err error) error {
	ps := diagnoseOpen(fsys, path, err)
	if len(ps) == 0 {
		return err
	}
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	return fmt.Errorf("%w: %s (%w)", ErrCorrupt, b.String(), err)
}

var sizeMismatchFile = regexp.MustCompile(`\(([^()]*\.sst)\)`)

// diagnoseOpen turns an error of pebble.Open into the problems it shows,
// naming the damaged file where it can; none if the error is not damage.
func diagnoseOpen(fsys vfs.FS, path string, err error) []CheckProblem {
	msg := err.Error()
	rel := func(p string) string { return filepath.Join(storeDir, filepath.Base(p)) }
	switch {
	case strings.Contains(msg, "error when replaying WAL") || strings.Contains(msg, "corrupt log file"):
		if ps := checkLogs(fsys, path); len(ps) > 0 {
			return ps
		}
		return []CheckProblem{{File: filepath.Join(storeDir, "*.log"), What: msg}}
	case strings.Contains(msg, "object size mismatch"):
		p := CheckProblem{What: "truncated or extended: " + msg}
		if m := sizeMismatchFile.FindStringSubmatch(msg); m != nil {
			p.File = rel(m[1])
		}
		return []CheckProblem{p}
	case errors.Is(err, fs.ErrNotExist) && strings.Contains(msg, "manifest"):
		return []CheckProblem{{File: rel(currentManifest(fsys, path)), What: "missing: " + msg}}
	case errors.Is(err, fs.ErrNotExist):
		// The MANIFEST lists tables that are gone: deleted, or the MANIFEST
		// is cut short and lists tables that compactions have since
		// replaced.
		if p := checkManifest(fsys, path); p != nil {
			p.What += "; it lists table files that no longer exist"
			return []CheckProblem{*p}
		}
		return []CheckProblem{{File: storeDir, What: "table files are missing: " + msg}}
	case pebble.IsCorruptionError(err):
		return []CheckProblem{{File: storeDir, What: msg}}
	}
	return nil
}

// currentManifest returns the name of the MANIFEST the store's marker
// names, or "MANIFEST-*" if there is none.
func currentManifest(fsys vfs.FS, path string) string {
	names, _ := fsys.List(path)
	best, iter := "MANIFEST-*", ""
	for _, n := range names {
		// marker.manifest.<iteration>.<value>; iterations are zero-padded.
		rest, ok := strings.CutPrefix(n, "marker.manifest.")
		if !ok {
			continue
		}
		it, value, ok := strings.Cut(rest, ".")
		if ok && it > iter {
			best, iter = value, it
		}
	}
	return best
}

// checkManifest reads the current MANIFEST record by record and reports
// it if it is missing, damaged or cut short.
func checkManifest(fsys vfs.FS, path string) *CheckProblem {
	name := currentManifest(fsys, path)
	rel := filepath.Join(storeDir, name)
	f, err := fsys.Open(fsys.PathJoin(path, name))
	if err != nil {
		return &CheckProblem{File: rel, What: "cannot be opened: " + err.Error()}
	}
	defer f.Close()
	r := record.NewReader(f, 0) // a MANIFEST is not a recycled log: number 0
	for {
		rec, err := r.Next()
		if err == nil {
			_, err = io.Copy(io.Discard, rec)
		}
		switch {
		case err == nil:
			continue
		case errors.Is(err, io.EOF):
			return nil
		case errors.Is(err, record.ErrUnexpectedEOF):
			return &CheckProblem{File: rel, What: fmt.Sprintf("cut short at offset %d", r.Offset())}
		default:
			return &CheckProblem{File: rel, What: fmt.Sprintf("damaged at offset %d: %v", r.Offset(), err)}
		}
	}
}

// checkLogs reads every WAL in the store and reports the ones with a
// damaged record. The end of the newest log may be torn by a crash; that
// is not damage.
func checkLogs(fsys vfs.FS, path string) []CheckProblem {
	logs, err := wal.Scan(wal.Dir{FS: fsys, Dirname: path})
	if err != nil {
		return []CheckProblem{{File: storeDir, What: "cannot list the logs: " + err.Error()}}
	}
	sort.Slice(logs, func(i, j int) bool { return logs[i].Num < logs[j].Num })
	var ps []CheckProblem
	for i, ll := range logs {
		_, name := ll.SegmentLocation(0)
		r := ll.OpenForRead()
		for {
			rec, off, err := r.NextRecord()
			if err == nil {
				_, err = io.Copy(io.Discard, rec)
			}
			if err == nil {
				continue
			}
			newest := i == len(logs)-1
			if !errors.Is(err, io.EOF) && !(newest && errors.Is(err, record.ErrUnexpectedEOF)) {
				ps = append(ps, CheckProblem{
					File: filepath.Join(storeDir, filepath.Base(name)),
					What: fmt.Sprintf("damaged record at offset %d: %v", off.Physical, err),
				})
			}
			break
		}
		r.Close()
	}
	return ps
}

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

	mu sync.Mutex // guards Problems while Pebble reports corruption
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
// table is read and its checksum checked, every record decodes with its
// own checksum, every expiry index entry points at a record with that
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
			case storeDir, lockName, sockName, genName, probeName:
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
	} else if len(v) != 1 || v[0] != storeFormat {
		r.problem(CheckProblem{Key: string(metaFormat), What: fmt.Sprintf("store format %x, this version reads %d", v, storeFormat)})
	}
	if v, ok := get(metaEpoch); ok && len(v) != 8 {
		r.problem(CheckProblem{Key: string(metaEpoch), What: fmt.Sprintf("clock epoch of %d bytes, want 8", len(v))})
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

// scanData reads every record: its key, checksum, value and expiry index
// entry, and that the saved key filter has it.
func (r *CheckReport) scanData(ctx context.Context, db *pebble.DB, values *vlog.Log, p *presence) error {
	// The largest value any cache accepts, whatever limit wrote this one.
	cd, err := codec.New(codec.Config{MaxValue: maxValueCeiling})
	if err != nil {
		return err
	}
	lo, hi := dataSpan()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	defer it.Close()
	now := time.Now().UnixNano()
	var buf []byte
	for valid := it.First(); valid && !r.full(); valid = it.Next() {
		if r.Entries%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		k := it.Key()
		if len(k) < dataHeader {
			r.problem(CheckProblem{Key: string(k), What: fmt.Sprintf("a data key of %d bytes, shorter than its header", len(k))})
			continue
		}
		uk := string(userKey(k))
		if xxhash.Sum64String(uk) != dataKeyHash(k) {
			r.problem(CheckProblem{Key: uk, What: "the hash in the data key is not the key's"})
		}
		v, err := it.ValueAndErr()
		if err != nil {
			r.problem(CheckProblem{Key: uk, What: "cannot be read: " + err.Error()})
			continue
		}
		r.Entries++
		r.Bytes += int64(len(k) + recordSize(v))
		hdr, _, err := decodeWith(cd, values, []byte(uk), v, &buf)
		if err != nil {
			r.problem(CheckProblem{Key: uk, What: "the record does not decode: " + err.Error()})
			continue
		}
		if p != nil && !p.mayContain(dataKeyHash(k)) {
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
		if err != nil || len(ref) < dataHeader-1 {
			r.problem(CheckProblem{Key: string(it.Key()), What: "an expiry index entry that does not parse"})
			continue
		}
		dk := append([]byte{dataPrefix}, ref...)
		uk := string(userKey(dk))
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
