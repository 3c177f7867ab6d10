package engine

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/record"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/wal"
)

// A damaged store, and what Open does about it. Check (check.go) reads
// the whole store offline and reports; the diagnoses below that name a
// damaged MANIFEST, marker or log (checkMarker, diagnoseOpen,
// checkManifest, checkLogs) are its first step too.
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
	logs, err := wal.Scan(wal.Dir{FS: fsys, Dirname: path}) // oldest first
	if err != nil || len(logs) == 0 {
		return "", 0, false
	}
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
		// A MANIFEST cut exactly between two records reads as a whole,
		// older one: it cannot be told from tables deleted under it, so
		// the problem names both.
		return []CheckProblem{{File: filepath.Join(storeDir, currentManifest(fsys, path)),
			What: "lists table files that are missing (deleted, or the MANIFEST is older than the tables): " + msg}}
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
