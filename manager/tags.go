package manager

import (
	"context"
	"crypto/rand"
	"fmt"
)

// Tags. The manager keeps tags in the backend's own keyspace, on every
// backend, as versions rather than member lists:
//
//   - Each tag has a version key, namespace:#tag:<tag>, holding 16 random
//     bytes. Kinds cannot contain '#', so no built key is ever a version key.
//   - A tagged Set reads its tags' versions (creating missing ones) and
//     stamps them into the stored value.
//   - InvalidateTag writes a new random version: one write, whatever the
//     number of entries.
//   - A read of a stamped value compares its stamps with the current
//     versions (one batched read); any difference, or a missing version
//     key, makes the entry a miss.
//
// Because the versions live in the store, they persist across restarts
// and every process that shares the store sees them. The consistency:
//
//   - After InvalidateTag returns, no read through any manager on the store
//     returns an entry tagged before it (for the tiered backend: after the
//     front tier's TTL in other processes, as for any write).
//   - A Set racing with InvalidateTag of one of its tags is treated as
//     written before it: its entry reads as a miss. A cached value computed
//     before an invalidation never survives it.
//   - An evicted or lost version key invalidates its entries rather than
//     reviving them, since a new version never matches an old stamp. Two
//     first Sets of a new tag racing each other may likewise cost one of
//     them a miss. Every error is on the side of a miss, never a stale hit.
//   - Invalidated entries are not deleted at once: they read as misses
//     until overwritten, expired, or evicted (never read again, they are
//     the first the disk cache's LRU gives up).
//
// Member lists would instead need a read-modify-write of a list that grows
// with the tag on every Set, and concurrent writers in two processes could
// lose a member, leaving a stale entry that InvalidateTag misses. A server
// could keep the list atomically (a Redis set updated in a Lua script),
// but only if the entry and its tags' sets share a
// hash slot: on a Redis Cluster that puts a whole namespace on one master.
// Versions need no script and no shared slot: every key is read and written
// alone, so entries spread over every slot of a cluster, and a server
// without scripting (diskcache serve) keeps tags as well as Redis does. A
// script would also add the entry to its sets only after GetOrSet's fn
// returned, so an invalidation during fn would not reach it; a version read
// before fn does.
//
// On a replicated server the version keys are only as durable as any
// write: Redis replicates asynchronously, so after a failover an
// InvalidateTag acknowledged just before it may be lost, and entries it
// invalidated read as hits again until it is repeated.
const tagMarker = "#tag:"

// tagKey returns the backend key of tag's version.
func (m *Manager) tagKey(tag string) string { return m.keys.prefix() + tagMarker + tag }

func (m *Manager) tagKeys(tags []string) []string {
	keys := make([]string, len(tags))
	for i, t := range tags {
		keys[i] = m.tagKey(t)
	}
	return keys
}

// InvalidateTag removes every entry set with tag, in this process and every
// other one that shares the backend.
//
// It writes a new version of the tag: from then on no read through any
// manager on the store returns an entry tagged before (through package
// tiered, other processes see it when their front copy of the version
// expires, as for any write). A Set or GetOrSet racing
// with the invalidation stores an entry that already reads as a miss. A
// lost version key (evicted, say) invalidates its entries rather than
// reviving them. Every error is on the side of a miss, never a stale hit.
// Invalidated entries are not deleted at once: they read as misses until
// overwritten, expired or evicted.
func (m *Manager) InvalidateTag(ctx context.Context, tag string) error {
	if tag == "" {
		return fmt.Errorf("manager: invalidate: empty tag")
	}
	v := newVersion()
	if err := m.b.Set(ctx, m.tagKey(tag), v[:], 0); err != nil {
		return fmt.Errorf("manager: invalidate tag %q: %w", tag, err)
	}
	return nil
}

// tagVersions returns a stamp with the current version of each tag. A tag
// without a version (new, or its key was evicted) gets a new random one.
func (m *Manager) tagVersions(ctx context.Context, tags []string) ([]stamp, error) {
	keys := m.tagKeys(tags)
	got, err := m.getMany(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("manager: read tag versions: %w", err)
	}
	stamps := make([]stamp, len(tags))
	for i, t := range tags {
		stamps[i].tag = t
		if v, ok := got[keys[i]]; ok && len(v) == versionLen {
			copy(stamps[i].version[:], v)
			continue
		}
		stamps[i].version = newVersion()
		if err := m.b.Set(ctx, keys[i], stamps[i].version[:], 0); err != nil {
			return nil, fmt.Errorf("manager: create tag %q: %w", t, err)
		}
	}
	return stamps, nil
}

// checkStamps reports whether every stamp still matches its tag's version.
func (m *Manager) checkStamps(ctx context.Context, key Key, stamps []stamp) (bool, error) {
	if len(stamps) == 0 {
		return true, nil
	}
	keys := make([]string, len(stamps))
	for i, s := range stamps {
		keys[i] = m.tagKey(s.tag)
	}
	got, err := m.getMany(ctx, keys)
	if err != nil {
		return false, fmt.Errorf("manager: get %q: read tag versions: %w", key.Name, err)
	}
	for i, s := range stamps {
		if v, ok := got[keys[i]]; !ok || string(v) != string(s.version[:]) {
			return false, nil
		}
	}
	return true, nil
}

// getMany reads keys in one call when the backend can, else one by one.
func (m *Manager) getMany(ctx context.Context, keys []string) (map[string][]byte, error) {
	if m.batch != nil {
		return m.batch.GetMany(ctx, keys)
	}
	out := make(map[string][]byte, len(keys))
	for _, k := range keys {
		v, err := m.b.Get(ctx, k)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}

// newVersion returns a random tag version. 128 random bits never repeat in
// practice, so an invalidated version never comes back.
func newVersion() [versionLen]byte {
	var v [versionLen]byte
	rand.Read(v[:]) // never fails (crypto/rand, Go 1.24+)
	return v
}
