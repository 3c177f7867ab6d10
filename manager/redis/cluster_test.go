package redis_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/diskcache-go/diskcache/manager"
	"github.com/diskcache-go/diskcache/manager/backendtest"
	"github.com/diskcache-go/diskcache/manager/redis"
)

// envCluster names the variable that points the tests at a Redis Cluster:
// the comma-separated addresses of some of its nodes, such as the three
// masters .ci/run starts on loopback ports.
const envCluster = "DISKCACHE_TEST_REDIS_CLUSTER"

// clusterClient returns a rueidis cluster client on the cluster of
// envCluster, closed when t ends, or skips t when the variable is unset.
func clusterClient(t *testing.T) rueidis.Client {
	t.Helper()
	seeds := os.Getenv(envCluster)
	if seeds == "" {
		t.Skipf("%s is not set: no Redis Cluster to test against (start one and set, e.g., %s=127.0.0.1:7000,127.0.0.1:7001)", envCluster, envCluster)
	}
	client, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress:  strings.Split(seeds, ","),
		DisableCache: true,
	})
	if err != nil {
		t.Fatalf("%s=%s: %v", envCluster, seeds, err)
	}
	t.Cleanup(client.Close)
	if client.Mode() != rueidis.ClientModeCluster {
		t.Fatalf("%s=%s is not a cluster (rueidis mode %v)", envCluster, seeds, client.Mode())
	}
	return client
}

// onCluster returns a Cache on client under a prefix of its own, cleared
// when t ends.
func onCluster(t *testing.T, client rueidis.Client) (*redis.Cache, string) {
	t.Helper()
	prefix := fmt.Sprintf("diskcache-test:%d:%d:", run, seq.Add(1))
	c := redis.New(client, &redis.Options{Prefix: prefix})
	t.Cleanup(func() {
		if err := redis.New(client, &redis.Options{Prefix: prefix}).Clear(ctx); err != nil {
			t.Errorf("clear %s: %v", prefix, err)
		}
	})
	return c, prefix
}

func TestClusterConformance(t *testing.T) {
	client := clusterClient(t)
	backendtest.Run(t, func(t *testing.T) manager.Backend {
		c, _ := onCluster(t, client)
		return c
	})
}

// The issue that started this test: on a cluster, a namespace without
// braces, tagged entries. Entries spread over the slots of every master,
// and tags still reach them all.
func TestClusterSpread(t *testing.T) {
	client := clusterClient(t)
	c, prefix := onCluster(t, client)
	m, err := manager.New(c, &manager.Options{Namespace: "app"})
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	keys := make([]manager.Key, n)
	for i := range keys {
		keys[i] = m.Keys().MustKey(manager.KindContext, "spread", i)
		tags := []string{"t3", fmt.Sprint("mod:", i%7)}
		if err := manager.Set(ctx, m, keys[i], fmt.Sprint(i), manager.WithTags(tags...)); err != nil {
			t.Fatalf("Set %d with tags %q: %v", i, tags, err)
		}
	}

	names := make([]string, n)
	for i, k := range keys {
		names[i] = prefix + k.Name
	}
	slots := keySlots(t, client, names)
	distinct := map[int64]bool{}
	for _, s := range slots {
		distinct[s] = true
	}
	// 2000 keys over 16384 slots land in about 1890 distinct ones.
	if len(distinct) < 1000 {
		t.Errorf("%d keys fell in %d distinct hash slots, want at least 1000", n, len(distinct))
	}
	masters := clusterMasters(t, client)
	for _, ms := range masters {
		held := 0
		for _, s := range slots {
			if ms.owns(s) {
				held++
			}
		}
		if held < n/10 {
			t.Errorf("master %s holds %d of %d keys, want at least %d", ms.addr, held, n, n/10)
		}
	}
	t.Logf("%d keys in %d distinct slots over %d masters", n, len(distinct), len(masters))

	got, err := manager.GetMany[string](ctx, m, keys)
	if err != nil || len(got) != n {
		t.Fatalf("GetMany of %d keys over every slot: %d found, %v", n, len(got), err)
	}
	if err := m.InvalidateTag(ctx, "mod:3"); err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		_, err := manager.Get[string](ctx, m, k)
		if alive := i%7 != 3; alive != (err == nil) {
			t.Fatalf("Get %d after InvalidateTag(mod:3): %v, want alive=%v", i, err, alive)
		}
	}
	if err := m.InvalidateTag(ctx, "t3"); err != nil {
		t.Fatal(err)
	}
	if got, err := manager.GetMany[string](ctx, m, keys); err != nil || len(got) != 0 {
		t.Fatalf("GetMany after InvalidateTag(t3): %d found, %v; want none", len(got), err)
	}
}

// TestClusterSlotMigration moves the hash slot of the keys that writers
// use from one master to another and back, key by key with MIGRATE as
// redis-cli --cluster reshard does, while the writers run through the
// manager: every call must succeed and read what its writer wrote, the
// client following ASK while the slot migrates and MOVED after.
func TestClusterSlotMigration(t *testing.T) {
	client := clusterClient(t)
	// Braces in the prefix put every key of this test in one slot.
	prefix := fmt.Sprintf("diskcache-test:{migrate-%d-%d}:", run, seq.Add(1))
	c := redis.New(client, &redis.Options{Prefix: prefix})
	t.Cleanup(func() {
		if err := c.Clear(ctx); err != nil {
			t.Errorf("clear %s: %v", prefix, err)
		}
	})
	m, err := manager.New(c, &manager.Options{Namespace: "mig"})
	if err != nil {
		t.Fatal(err)
	}
	slot := keySlots(t, client, []string{prefix})[0]

	stop := make(chan struct{})
	var (
		wg     sync.WaitGroup
		ops    atomic.Int64
		failed atomic.Bool
		errs   = make(chan error, 16)
	)
	var once sync.Once
	halt := func() { once.Do(func() { close(stop); wg.Wait() }) }
	defer halt() // also when a t.Fatal ends the test early
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := migrationStep(m, w, i); err != nil {
					errs <- fmt.Errorf("writer %d, step %d: %w", w, i, err)
					failed.Store(true)
					return
				}
				ops.Add(1)
			}
		}()
	}
	// progress waits for n more calls, or for a writer to fail.
	progress := func(what string, n int64) {
		t.Helper()
		before := ops.Load()
		waitFor(t, what, func() bool { return ops.Load() >= before+n || failed.Load() })
	}
	// Let the writers fill the slot, so that there are keys to migrate.
	progress("the writers' first 400 calls", 400)

	from := slotOwner(t, client, slot)
	var to master
	for _, ms := range clusterMasters(t, client) {
		if ms.id != from.id {
			to = ms
			break
		}
	}
	moved := migrateSlot(t, client, slot, from, to)
	progress("100 calls after the first migration", 100)
	moved += migrateSlot(t, client, slot, to, from)
	progress("100 calls after the second migration", 100)
	halt()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("slot %d: %d keys migrated %s -> %s -> %s under %d calls", slot, moved, from.addr, to.addr, from.addr, ops.Load())
}

// migrationStep is one writer's call i: a write of its own key, with a
// tag, read back at once; every 10th call also reads a batch and
// invalidates a tag of its own.
func migrationStep(m *manager.Manager, w, i int) error {
	k := m.Keys().MustKey(manager.KindContext, w, i%50)
	want := fmt.Sprintf("%d-%d", w, i)
	tag := fmt.Sprint("w", w, "-", i%5)
	if err := manager.Set(ctx, m, k, want, manager.WithTags(tag)); err != nil {
		return err
	}
	got, err := manager.Get[string](ctx, m, k)
	if err != nil || got != want {
		return fmt.Errorf("Get after Set: %q, %v; want %q", got, err, want)
	}
	if i%10 != 9 {
		return nil
	}
	batch := make([]manager.Key, 10)
	for j := range batch {
		batch[j] = m.Keys().MustKey(manager.KindContext, w, j)
	}
	if _, err := manager.GetMany[string](ctx, m, batch); err != nil {
		return fmt.Errorf("GetMany: %w", err)
	}
	if err := m.InvalidateTag(ctx, tag); err != nil {
		return err
	}
	if _, err := manager.Get[string](ctx, m, k); !errors.Is(err, manager.ErrNotFound) {
		return fmt.Errorf("Get after InvalidateTag(%s): %v, want ErrNotFound", tag, err)
	}
	return nil
}

// migrateSlot moves slot from one master to another as redis-cli
// --cluster reshard does, and returns the number of keys it moved.
func migrateSlot(t *testing.T, client rueidis.Client, slot int64, from, to master) int {
	t.Helper()
	nodes := client.Nodes()
	src, dst := nodes[from.addr], nodes[to.addr]
	if src == nil || dst == nil {
		t.Fatalf("no connection to %s or %s among %d nodes", from.addr, to.addr, len(nodes))
	}
	s := strconv.FormatInt(slot, 10)
	do(t, dst, "CLUSTER", "SETSLOT", s, "IMPORTING", from.id)
	do(t, src, "CLUSTER", "SETSLOT", s, "MIGRATING", to.id)
	host, port, _ := strings.Cut(to.addr, ":")
	moved := 0
	for {
		keys, err := src.Do(ctx, src.B().Arbitrary("CLUSTER", "GETKEYSINSLOT").Args(s, "10").Build()).AsStrSlice()
		if err != nil {
			t.Fatalf("CLUSTER GETKEYSINSLOT %s on %s: %v", s, from.addr, err)
		}
		if len(keys) == 0 {
			break
		}
		// Ten keys at a time, so that the writers run between batches
		// against a slot half here, half there.
		do(t, src, append([]string{"MIGRATE", host, port, "", "0", "10000", "REPLACE", "KEYS"}, keys...)...)
		moved += len(keys)
		time.Sleep(time.Millisecond)
	}
	// The new owner first, then the old one and the others, as redis-cli
	// does: a client sent back and forth in between follows MOVED again.
	do(t, dst, "CLUSTER", "SETSLOT", s, "NODE", to.id)
	do(t, src, "CLUSTER", "SETSLOT", s, "NODE", to.id)
	for _, ms := range clusterMasters(t, client) {
		if ms.id != from.id && ms.id != to.id {
			do(t, nodes[ms.addr], "CLUSTER", "SETSLOT", s, "NODE", to.id)
		}
	}
	return moved
}

func do(t *testing.T, node rueidis.Client, args ...string) {
	t.Helper()
	if err := node.Do(ctx, node.B().Arbitrary(args[0]).Args(args[1:]...).Build()).Error(); err != nil {
		t.Fatalf("%s: %v", strings.Join(args[:min(len(args), 5)], " "), err)
	}
}

// keySlots returns the hash slot of each key, as the cluster computes it.
func keySlots(t *testing.T, client rueidis.Client, keys []string) []int64 {
	t.Helper()
	node := anyNode(t, client)
	cmds := make(rueidis.Commands, len(keys))
	for i, k := range keys {
		cmds[i] = node.B().Arbitrary("CLUSTER", "KEYSLOT").Args(k).Build()
	}
	slots := make([]int64, len(keys))
	for i, r := range node.DoMulti(ctx, cmds...) {
		s, err := r.AsInt64()
		if err != nil {
			t.Fatalf("CLUSTER KEYSLOT %q: %v", keys[i], err)
		}
		slots[i] = s
	}
	return slots
}

func anyNode(t *testing.T, client rueidis.Client) rueidis.Client {
	t.Helper()
	for _, n := range client.Nodes() {
		return n
	}
	t.Fatal("the cluster client knows no node")
	return nil
}

// master is a master node of the cluster and the slot ranges it serves.
type master struct {
	id, addr string
	replicas []string // addresses
	ranges   [][2]int64
}

func (ms master) owns(slot int64) bool {
	for _, r := range ms.ranges {
		if r[0] <= slot && slot <= r[1] {
			return true
		}
	}
	return false
}

// clusterMasters returns the masters that serve slots, from CLUSTER NODES
// ("<id> <ip:port@bus> <flags> <master id> <ping> <pong> <epoch> <link>
// <slot or range>...").
func clusterMasters(t *testing.T, client rueidis.Client) []master {
	t.Helper()
	return mastersSeenBy(t, anyNode(t, client))
}

// clusterMastersVia is clusterMasters as the node at addr sees them.
func clusterMastersVia(t *testing.T, addr string) []master {
	t.Helper()
	node, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress:       []string{addr},
		DisableCache:      true,
		ForceSingleClient: true,
	})
	if err != nil {
		t.Fatalf("connect to %s: %v", addr, err)
	}
	defer node.Close()
	return mastersSeenBy(t, node)
}

func mastersSeenBy(t *testing.T, node rueidis.Client) []master {
	t.Helper()
	text, err := node.Do(ctx, node.B().ClusterNodes().Build()).ToString()
	if err != nil {
		t.Fatalf("CLUSTER NODES: %v", err)
	}
	text = strings.TrimPrefix(text, "txt:") // a RESP3 verbatim string
	var masters []master
	replicas := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			t.Fatalf("CLUSTER NODES line %q: too few fields", line)
		}
		addr, _, _ := strings.Cut(f[1], "@")
		flags := "," + f[2] + ","
		if strings.Contains(flags, ",fail") || strings.Contains(flags, ",noaddr,") {
			continue
		}
		if strings.Contains(flags, ",slave,") {
			replicas[f[3]] = append(replicas[f[3]], addr)
			continue
		}
		ms := master{id: f[0], addr: addr}
		for _, r := range f[8:] {
			if strings.HasPrefix(r, "[") { // a slot migrating or importing
				continue
			}
			lo, hi, isRange := strings.Cut(r, "-")
			if !isRange {
				hi = lo
			}
			a, err1 := strconv.ParseInt(lo, 10, 64)
			b, err2 := strconv.ParseInt(hi, 10, 64)
			if err1 != nil || err2 != nil {
				t.Fatalf("CLUSTER NODES: bad slot range %q in %q", r, line)
			}
			ms.ranges = append(ms.ranges, [2]int64{a, b})
		}
		if len(ms.ranges) > 0 {
			masters = append(masters, ms)
		}
	}
	for i := range masters {
		masters[i].replicas = replicas[masters[i].id]
	}
	if len(masters) < 2 {
		t.Fatalf("CLUSTER NODES shows %d masters serving slots, want at least 2:\n%s", len(masters), text)
	}
	return masters
}

func slotOwner(t *testing.T, client rueidis.Client, slot int64) master {
	t.Helper()
	for _, ms := range clusterMasters(t, client) {
		if ms.owns(slot) {
			return ms
		}
	}
	t.Fatalf("no master serves slot %d", slot)
	return master{}
}

// waitFor polls cond for up to a minute: generous, for a loaded machine.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within a minute", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// envFailover, set to 1 with envCluster, lets TestClusterFailover kill a
// master of that cluster (a process on this machine): the cluster then
// runs on with one master fewer replicated, so .ci/run runs it last.
const envFailover = "DISKCACHE_TEST_REDIS_CLUSTER_FAILOVER"

// TestClusterFailover kills (SIGKILL) a master that has a replica while
// writers run through the manager, with the deadline an application would
// give each call. The replica takes over, and calls resume: a full pass
// of writes and reads over every slot succeeds after the takeover. It logs
// what the callers saw meanwhile and how many acknowledged writes the
// failover lost (Redis replicates asynchronously: some may be).
func TestClusterFailover(t *testing.T) {
	if os.Getenv(envFailover) != "1" {
		t.Skipf("%s is not 1: this test kills a master of the cluster", envFailover)
	}
	client := clusterClient(t)
	c, _ := onCluster(t, client)
	m, err := manager.New(c, &manager.Options{Namespace: "failover"})
	if err != nil {
		t.Fatal(err)
	}
	var victim master
	for _, ms := range clusterMasters(t, client) {
		if len(ms.replicas) > 0 {
			victim = ms
			break
		}
	}
	if victim.id == "" {
		t.Fatal("no master has a replica to take over")
	}
	pid := serverPID(t, client, victim.addr)

	// Before the kill the writers write keys of phase 0, after it keys of
	// phase 1, so that the last acknowledged write of each phase-0 key was
	// sent before the takeover.
	const perWriter, writers = 200, 4
	var (
		phase    atomic.Int32
		stop     = make(chan struct{})
		wg       sync.WaitGroup
		mu       sync.Mutex
		acked    = map[manager.Key]string{} // phase 0's last acknowledged values
		failures = map[string]int{}         // what callers saw, by error
		examples = map[string]string{}      // one full error of each kind
		failed   atomic.Int64
		after    atomic.Int64 // calls that succeeded in phase 1
		calls    atomic.Int64
	)
	var once sync.Once
	halt := func() { once.Do(func() { close(stop); wg.Wait() }) }
	defer halt()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p := phase.Load()
				k := m.Keys().MustKey(manager.KindContext, p, w, i%perWriter)
				v := fmt.Sprint(i)
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				err := manager.Set(cctx, m, k, v)
				if err == nil {
					_, err = manager.Get[string](cctx, m, k)
				}
				cancel()
				calls.Add(1)
				if err != nil {
					failed.Add(1)
					mu.Lock()
					failures[errorKind(err)]++
					examples[errorKind(err)] = err.Error()
					mu.Unlock()
					continue
				}
				if p == 0 {
					mu.Lock()
					acked[k] = v
					mu.Unlock()
				} else {
					after.Add(1)
				}
			}
		}()
	}
	waitFor(t, "acknowledged writes of every phase-0 key", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) == writers*perWriter
	})

	killed := time.Now()
	phase.Store(1)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill master %s (pid %d): %v", victim.addr, pid, err)
	}
	var promoted master
	waitFor(t, fmt.Sprintf("a replica of %s (%v) serving its slots", victim.addr, victim.replicas), func() bool {
		for _, ms := range clusterMastersVia(t, victim.replicas[0]) {
			if ms.id != victim.id && ms.owns(victim.ranges[0][0]) {
				promoted = ms
				return true
			}
		}
		return false
	})
	tookOver := time.Since(killed)
	waitFor(t, "500 successful calls after the takeover", func() bool { return after.Load() >= 500 })
	halt()

	// Calls resume: every key, on every master, is written and read back,
	// each call with the same deadline as the writers'.
	for i := range perWriter {
		k := m.Keys().MustKey(manager.KindContext, "final", i)
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := manager.Set(cctx, m, k, "v")
		if err == nil {
			_, err = manager.Get[string](cctx, m, k)
		}
		cancel()
		if err != nil {
			t.Fatalf("after the takeover, Set and Get of %s: %v", k, err)
		}
	}
	lost := 0
	for k, v := range acked {
		if got, err := manager.Get[string](ctx, m, k); err != nil || got != v {
			lost++
		}
	}
	t.Logf("killed master %s; %s took over its slots %v after %v", victim.addr, promoted.addr, victim.ranges, tookOver.Round(time.Millisecond))
	t.Logf("calls (a Set and a Get, 5s deadline) that failed: %d of %d: %v", failed.Load(), calls.Load(), failures)
	for _, e := range examples {
		t.Logf("for example: %s", e)
	}
	t.Logf("phase-0 keys whose last acknowledged write was lost: %d of %d", lost, len(acked))
}

// serverPID returns the process id of the Redis server at addr, which must
// be on this machine.
func serverPID(t *testing.T, client rueidis.Client, addr string) int {
	t.Helper()
	host, _, _ := strings.Cut(addr, ":")
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		t.Fatalf("master %s is not on a loopback address: will not kill it", addr)
	}
	node := client.Nodes()[addr]
	if node == nil {
		t.Fatalf("no connection to %s", addr)
	}
	info, err := node.Do(ctx, node.B().Info().Section("server").Build()).ToString()
	if err != nil {
		t.Fatalf("INFO server on %s: %v", addr, err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			pid, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("INFO server on %s: process_id %q: %v", addr, v, err)
			}
			return pid
		}
	}
	t.Fatalf("INFO server on %s has no process_id", addr)
	return 0
}

// errorKind shortens an error to what tells failures apart: its last
// part, without the key or address that vary.
func errorKind(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "context deadline exceeded"
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}
