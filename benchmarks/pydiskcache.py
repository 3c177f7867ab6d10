"""The python-diskcache peer of the diskcache benchmarks.

The Go harness (main.go) writes a spec file with the value pools, the keys
and the op streams, and runs this script once per workload, like its Go
children: the result is the last line of stdout, as JSON. With --digest it
prints a SHA-256 over every operation of each workload, computed the same way
as digests() in workload.go, which the harness compares with its own.

It needs Debian's python3-diskcache (import diskcache) and nothing else.
"""

import argparse
import array
import hashlib
import json
import os
import struct
import sys
import threading
import time

MAGIC = b"DCSPEC1\n"
MASK = (1 << 64) - 1
SET_BIT = 1 << 31


def mix64(x):
    """SplitMix64's finalizer, as mix64 in workload.go."""
    x = (x + 0x9E3779B97F4A7C15) & MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def make_key(i, seed):
    """Key i, as key in workload.go: the spec holds no keys from base11 on."""
    h = mix64(i ^ seed)
    raw = struct.pack(">QQ", h, mix64(h))
    return raw.hex()[: 16 + (h >> 56) % 9].encode()


class Spec:
    def __init__(self, path):
        with open(path, "rb") as f:
            data = f.read()
        if data[: len(MAGIC)] != MAGIC:
            raise SystemExit("%s: not a spec file" % path)
        (n,) = struct.unpack_from("<I", data, len(MAGIC))
        start = len(MAGIC) + 4
        hdr = json.loads(data[start : start + n])
        body = memoryview(data)[start + n :]
        self.seed = hdr["seed"]
        self.pool_size = hdr["pool_size"]
        self.p = hdr["params"]
        self._sections = {k: body[o : o + l] for k, (o, l) in hdr["sections"].items()}
        self.pool_random = bytes(self._sections["pool_random"])
        self.pool_text = bytes(self._sections["pool_text"])
        self._keys = bytes(self._sections["keys"])
        self._offs = self.u32("key_offsets")
        p = self.p
        self.base4 = p["N1"]
        self.base5 = p["N1"] + p["N4"]
        self.base6 = p["N1"] + p["N4"] + p["N5"]
        self.base11 = self.base6 + p["N6"]

    def u32(self, name):
        a = array.array("I")
        a.frombytes(self._sections[name])
        if sys.byteorder != "little":
            a.byteswap()
        return a

    def key(self, i):
        return self._keys[self._offs[i] : self._offs[i + 1]]

    def keys(self, lo, hi):
        ks, offs = self._keys, self._offs
        return [ks[offs[i] : offs[i + 1]] for i in range(lo, hi)]

    def made_keys(self, lo, hi):
        """Keys [lo, hi) past the spec's, made as key in workload.go does."""
        return [make_key(i, self.seed) for i in range(lo, hi)]

    def value(self, i, n, salt):
        """The value of key index i at size n, as appendValue in workload.go."""
        pool = self.pool_text if i % 2 else self.pool_random
        return self._window(pool, i, n, salt)

    def random_value(self, i, n, salt):
        """As appendRandom in workload.go: random bytes whatever i is."""
        return self._window(self.pool_random, i, n, salt)

    def _window(self, pool, i, n, salt):
        tag = (i << 8) | salt
        off = mix64(tag ^ self.seed) % (self.pool_size - n + 9)
        return struct.pack("<Q", tag) + pool[off : off + n - 8]


def chunk(ops, k, n):
    return ops[len(ops) * k // n : len(ops) * (k + 1) // n]


def digests(s):
    p = s.p
    out = {}
    h = hashlib.sha256()

    def op(kind, i, n=0, salt=0, ttl_ms=0, key=None, value=s.value):
        k = s.key(i) if key is None else key
        buf = kind + struct.pack("<I", len(k)) + k
        if kind == b"S":
            buf += struct.pack("<II", ttl_ms, n) + value(i, n, salt)
        h.update(buf)

    def done(name):
        nonlocal h
        out[name] = h.hexdigest()
        h = hashlib.sha256()

    for i in s.u32("w1_order"):
        op(b"S", i, p["ValueW1"], p["SaltW1"])
    done("W1")
    for i in s.u32("w2_gets"):
        op(b"G", i)
    done("W2")
    for o in s.u32("w3_ops"):
        if o & SET_BIT:
            op(b"S", o & ~SET_BIT, p["ValueW1"], p["SaltW3"])
        else:
            op(b"G", o)
    done("W3")
    for i in range(p["N4"]):
        op(b"S", s.base4 + i, p["ValueW4"], p["SaltW4"])
    for i in s.u32("w4_gets"):
        op(b"G", i)
    done("W4")
    ttl_ms = int(p["TTLS"] * 1000)
    for i in range(p["N5"]):
        op(b"S", s.base5 + i, p["ValueW1"], p["SaltW5"], ttl_ms)
    done("W5")
    for i in range(p["Hot6"]):
        op(b"S", s.base6 + i, p["ValueW6"], p["SaltW6"])
    for j in range(p["Hot6"], p["N6"]):
        op(b"S", s.base6 + j, p["ValueW6"], p["SaltW6"])
        op(b"G", s.base6 + j % p["Hot6"])
    done("W6")
    for i in range(p["Keys8"]):
        op(b"S", i, p["ValueW1"], p["SaltW8"])
    ttl_ms = int(p["TTL8S"] * 1000)
    for j in range(p["N8"]):
        op(b"S", j % p["Keys8"], p["ValueW1"], p["SaltW8"], ttl_ms)
    done("W8")
    for i in range(s.base11, s.base11 + p["N11"]):
        op(b"S", i, p["ValueW11"], p["SaltW11"], key=make_key(i, s.seed), value=s.random_value)
    done("W11")
    return out


def peak_rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def disk_bytes(d):
    n = 0
    for root, _, files in os.walk(d):
        for name in files:
            try:
                n += os.stat(os.path.join(root, name)).st_blocks * 512
            except FileNotFoundError:
                pass
    return n


def settle(d):
    """As settle in measure.go: disk_bytes once it stopped falling for 1 s."""
    low, since = disk_bytes(d), time.monotonic()
    deadline = since + 10
    while time.monotonic() < deadline and time.monotonic() - since < 1:
        time.sleep(0.1)
        b = disk_bytes(d)
        if b < low:
            low, since = b, time.monotonic()
    return low


def percentile(sorted_ns, pct):
    if not sorted_ns:
        return 0
    i = int(len(sorted_ns) * pct / 100 + 0.5) - 1
    return sorted_ns[min(max(i, 0), len(sorted_ns) - 1)]


class Run:
    def __init__(self, spec, args):
        self.s = spec
        self.p = spec.p
        self.args = args
        self.res = {"seconds": 0.0, "metrics": {}}

    def open(self, **settings):
        import diskcache

        self.res.setdefault("base_rss", peak_rss())
        # The same read cache budget as the Go peers' block caches: SQLite's
        # page cache, in 4 KiB pages. The rest are python-diskcache's
        # defaults: WAL journal, synchronous=NORMAL, 64 MiB mmap.
        settings.setdefault("sqlite_cache_size", self.p["CacheBudget"] // 4096)
        return diskcache.Cache(self.args.dir, **settings)

    def metric(self, name, v):
        self.res["metrics"][name] = v

    def workers(self, n, ops, fn, lat=False):
        """Runs fn(op) over ops split into n contiguous parts, one a thread."""
        start = threading.Barrier(n + 1)
        lats = [[] for _ in range(n)]
        errs = []

        def work(w):
            part = chunk(ops, w, n)
            out = lats[w]
            clock = time.perf_counter_ns
            start.wait()
            try:
                if lat:
                    for o in part:
                        t0 = clock()
                        fn(o)
                        out.append(clock() - t0)
                else:
                    for o in part:
                        fn(o)
            except Exception as e:  # reported by the harness
                errs.append(e)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(n)]
        for t in threads:
            t.start()
        start.wait()
        t0 = time.perf_counter()
        for t in threads:
            t.join()
        el = time.perf_counter() - t0
        if errs:
            raise errs[0]
        all_lats = sorted(x for l in lats for x in l) if lat else []
        return el, all_lats

    def w1(self):
        p, s = self.p, self.s
        keys = s.keys(0, p["N1"])
        order = s.u32("w1_order")
        c = self.open()
        n, salt = p["ValueW1"], p["SaltW1"]

        def set_(i):
            c.set(keys[i], s.value(i, n, salt))

        el, _ = self.workers(1, order, set_)
        self.res["seconds"] = el
        self.metric("set_ops", len(order) / el)
        self.verify(c, keys, 0, n, salt)
        c.close()

    def verify(self, c, keys, base, n, *salts):
        step = max(1, len(keys) // 1000)
        for i in range(0, len(keys), step):
            v = c.get(keys[i])
            if v is None:
                raise RuntimeError("key %r (index %d) missing after it was set" % (keys[i], base + i))
            if not any(v == self.s.value(base + i, n, salt) for salt in salts):
                raise RuntimeError("key %r (index %d): wrong value" % (keys[i], base + i))

    def w2(self):
        p, s = self.p, self.s
        keys = s.keys(0, p["N1"])
        gets = s.u32("w2_gets")
        c = self.open()
        misses = [0]

        def get(i):
            if c.get(keys[i]) is None:
                misses[0] += 1

        for workers in (1, p["WorkersW2"]):
            el, lats = self.workers(workers, gets, get, lat=True)
            if misses[0]:
                raise RuntimeError("%d of %d Gets of W1's keys missed" % (misses[0], len(gets)))
            sfx = "_%d" % workers
            self.res["seconds"] += el
            self.metric("get_ops" + sfx, len(gets) / el)
            self.metric("p50_us" + sfx, percentile(lats, 50) / 1000)
            self.metric("p99_us" + sfx, percentile(lats, 99) / 1000)
        c.close()

    def mixed(self, c, keys, workers, ops):
        s, n, salt = self.s, self.p["ValueW1"], self.p["SaltW3"]
        misses = [0]

        def op(o):
            if o & SET_BIT:
                i = o & ~SET_BIT
                c.set(keys[i], s.value(i, n, salt))
            elif c.get(keys[o]) is None:
                misses[0] += 1

        el, _ = self.workers(workers, ops, op)
        return el, misses[0]

    def w3(self):
        p, s = self.p, self.s
        keys = s.keys(0, p["N1"])
        ops = s.u32("w3_ops")
        c = self.open()
        el, misses = self.mixed(c, keys, p["WorkersW3"], ops)
        if misses:
            raise RuntimeError("%d Gets of W1's keys missed" % misses)
        self.res["seconds"] = el
        self.metric("ops", len(ops) / el)
        c.close()

    def w4(self):
        p, s = self.p, self.s
        base, n = s.base4, p["ValueW4"]
        keys = s.keys(base, base + p["N4"])
        gets = s.u32("w4_gets")
        c = self.open()
        salt = p["SaltW4"]

        def set_(i):
            c.set(keys[i], s.value(base + i, n, salt))

        el, _ = self.workers(1, range(p["N4"]), set_)
        mb = p["N4"] * n / 1e6
        self.res["seconds"] = el
        self.metric("set_ops", p["N4"] / el)
        self.metric("set_mbs", mb / el)

        def get(i):
            v = c.get(keys[i - base])
            if v is None or len(v) != n:
                raise RuntimeError("key index %d: got %r" % (i, None if v is None else len(v)))

        el, _ = self.workers(1, gets, get)
        self.res["seconds"] += el
        self.metric("get_ops", len(gets) / el)
        self.metric("get_mbs", mb / el)
        self.verify(c, keys, base, n, salt)
        c.close()

    def w5(self):
        p, s = self.p, self.s
        base, n, salt = s.base5, p["ValueW1"], p["SaltW5"]
        keys = s.keys(base, base + p["N5"])
        c = self.open()
        d = self.args.dir
        empty = disk_bytes(d)
        ttl = p["TTLS"]

        def set_(i):
            c.set(keys[i], s.value(base + i, n, salt), expire=ttl)

        el, _ = self.workers(1, range(p["N5"]), set_)
        set_end = time.monotonic()
        self.res["seconds"] = el
        self.metric("set_ops", p["N5"] / el)
        peak = disk_bytes(d)
        time.sleep(max(0, set_end + p["CheckS"] - time.monotonic()))
        returned = sum(1 for k in keys if c.get(k) is not None)
        self.metric("returned", returned)
        # As in child.go: stop at the window's end, or once half of what the
        # Sets added is back and nothing more came back for SettleS.
        last, low = -1.0, peak
        while True:
            b = disk_bytes(d)
            peak = max(peak, b)
            since = time.monotonic() - set_end
            if b < low - (peak - empty) // 100:
                last, low = since, b
            back = (peak - b) / max(peak - empty, 1)
            if since >= p["WindowS"] or (back >= 0.5 and since - last >= p["SettleS"]):
                break
            time.sleep(0.25)
        self.metric("back", back)
        self.metric("reclaim_s", last)
        self.metric("disk_empty", empty)
        self.metric("disk_peak", peak)
        self.metric("disk_wait", b)
        if back < 0.5:
            t0 = time.monotonic()
            c.expire()
            self.metric("disk_explicit", settle(d))
            self.metric("explicit_s", time.monotonic() - t0)
        if returned:
            raise RuntimeError("%d of %d entries came back after they expired" % (returned, len(keys)))
        c.close()

    def w6(self):
        p, s = self.p, self.s
        base, n, salt, hot = s.base6, p["ValueW6"], p["SaltW6"], p["Hot6"]
        keys = s.keys(base, base + p["N6"])
        # Least-recently-used, as diskcache's eviction (python-diskcache's
        # default is least-recently-stored); it writes on every Get.
        c = self.open(size_limit=p["Limit"], eviction_policy="least-recently-used")
        hits = gets = sets = 0
        t0 = time.perf_counter()
        for j in range(hot):
            c.set(keys[j], s.value(base + j, n, salt))
            sets += 1
        for j in range(hot, p["N6"]):
            c.set(keys[j], s.value(base + j, n, salt))
            sets += 1
            h = j % hot
            gets += 1
            if c.get(keys[h]) is not None:
                hits += 1
            else:
                c.set(keys[h], s.value(base + h, n, salt))
                sets += 1
        el = time.perf_counter() - t0
        self.res["seconds"] = el
        self.metric("ops", (sets + gets) / el)
        self.metric("set_ops", sets / el)
        self.metric("hot_hit", hits / gets)
        self.metric("disk_open", disk_bytes(self.args.dir))
        c.close()

    def w8loop(self):
        """W8's one-process loop: a cache of Keys8 keys, then N8 cycles of
        open, one set with the TTL, close, each cycle timed (as w8loop in
        child.go)."""
        p, s = self.p, self.s
        n, salt, ttl, nkeys = p["ValueW1"], p["SaltW8"], p["TTL8S"], p["Keys8"]
        keys = s.keys(0, nkeys)
        c = self.open()
        for i in range(nkeys):
            c.set(keys[i], s.value(i, n, salt))
        c.close()
        cycles, opens, closes = [], [], []
        clock = time.perf_counter_ns
        for j in range(p["N8"]):
            i = j % nkeys
            v = s.value(i, n, salt)
            t0 = clock()
            c = self.open()
            t1 = clock()
            c.set(keys[i], v, expire=ttl)
            t2 = clock()
            c.close()
            t3 = clock()
            cycles.append(t3 - t0)
            opens.append(t1 - t0)
            closes.append(t3 - t2)
            self.res["seconds"] += (t3 - t0) / 1e9
        cycles.sort()
        opens.sort()
        closes.sort()
        self.metric("cycle_p50_ms", percentile(cycles, 50) / 1e6)
        self.metric("cycle_p99_ms", percentile(cycles, 99) / 1e6)
        self.metric("open_p50_ms", percentile(opens, 50) / 1e6)
        self.metric("close_p50_ms", percentile(closes, 50) / 1e6)
        # The cycles' sets carry the TTL, which a long loop outlasts: check
        # the keys no cycle set, and the last cycle's.
        lo, last = min(p["N8"], nkeys), (p["N8"] - 1) % nkeys
        c = self.open()
        self.verify(c, keys[lo:], lo, n, salt)
        self.verify(c, keys[last : last + 1], last, n, salt)
        c.close()

    def w7(self):
        p, s, k = self.p, self.s, self.args.part
        keys = s.keys(0, p["N1"])
        gets = chunk(s.u32("w2_gets"), k, p["Procs"])
        ops = chunk(s.u32("w3_ops"), k, p["Procs"])
        c = self.open()

        def phase(name, fn):
            print("ready", flush=True)
            if not sys.stdin.readline():
                raise RuntimeError("waiting for go: stdin closed")
            el = fn()
            print("done", flush=True)
            self.res["seconds"] += el
            self.metric(name + "_s", el)

        def run_gets():
            el, _ = self.workers(1, gets, lambda i: c.get(keys[i]))
            return el

        phase("w2", run_gets)
        phase("w3", lambda: self.mixed(c, keys, 1, ops)[0])
        c.close()

    def w11(self):
        """W11 held at the limit, as w11 in child.go: N11 Sets of random
        values under fresh keys into a cache with a size limit, one writer,
        no reads; once the disk use settles, the entries it holds are
        counted by iterating it, and len() (its own count) read beside."""
        p, s = self.p, self.s
        base, n, salt = s.base11, p["ValueW11"], p["SaltW11"]
        keys = s.made_keys(base, base + p["N11"])
        c = self.open(size_limit=p["Limit11"], eviction_policy="least-recently-used")
        value = s.random_value
        t0 = time.perf_counter()
        for j, k in enumerate(keys):
            c.set(k, value(base + j, n, salt))
        el = time.perf_counter() - t0
        self.res["seconds"] = el
        self.metric("set_ops", len(keys) / el)
        self.metric("disk_settled", settle(self.args.dir))
        held = sum(1 for _ in c)
        self.metric("held", held)
        self.metric("held_len", len(c))
        self.verify_held(c, keys, base, held)
        c.close()

    def verify_held(self, c, keys, base, held):
        """As verifyHeld in child.go: a key the limit left has its value."""
        if held <= 0 or held > len(keys):
            raise RuntimeError("%d entries held after %d Sets" % (held, len(keys)))
        p = self.p
        for j in range(0, len(keys), max(1, len(keys) // 1000)):
            v = c.get(keys[j])
            if v is not None and v != self.s.random_value(base + j, p["ValueW11"], p["SaltW11"]):
                raise RuntimeError("key %r (index %d): wrong value" % (keys[j], base + j))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spec", required=True)
    ap.add_argument("--digest", action="store_true")
    ap.add_argument("--dir")
    ap.add_argument("--workload")
    ap.add_argument("--part", type=int, default=0)
    args = ap.parse_args()
    spec = Spec(args.spec)
    if args.digest:
        print(json.dumps(digests(spec)), flush=True)
        return
    run = Run(spec, args)
    name = "w1" if args.workload == "fill" else args.workload.lower()
    try:
        getattr(run, name)()
    except Exception as e:
        run.res["error"] = "%s: %s" % (type(e).__name__, e)
    run.res["peak_rss"] = peak_rss()
    print(json.dumps(run.res), flush=True)
    sys.exit(1 if "error" in run.res else 0)


if __name__ == "__main__":
    main()
