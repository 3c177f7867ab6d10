"""Smoke test of diskcache serve with redis-py, as a new user would use it.

Usage: python3 redis_py.py HOST PORT. Exits non-zero on the first failure.
Covers what redis-py sends by default: pipelines (MULTI/EXEC), WATCH,
Lock (SET NX PX plus its Lua scripts), scan_iter, and the string commands.
"""
import sys
import redis

host, port = sys.argv[1], int(sys.argv[2])
r = redis.Redis(host=host, port=port)
r.flushdb()

# A pipeline is a transaction by default.
with r.pipeline() as p:
    p.set("a", "1").incr("a").incrbyfloat("a", 0.5).get("a")
    assert p.execute() == [True, 2, 2.5, b"2.5"], "pipeline"
with r.pipeline(transaction=False) as p:
    p.set("b", "x").append("b", "yz").getrange("b", 1, -1)
    assert p.execute() == [True, 3, b"yz"], "plain pipeline"

# WATCH: a check-and-set that retries when the key changed.
def double(pipe):
    v = int(pipe.get("a2") or 0)
    pipe.multi()
    pipe.set("a2", v * 2 + 1)
r.transaction(double, "a2")
assert r.get("a2") == b"1", "transaction()"
with r.pipeline() as p:
    p.watch("w")
    r.set("w", "changed")  # by another client
    p.multi()
    p.set("w", "mine")
    try:
        p.execute()
        raise AssertionError("EXEC succeeded though a watched key changed")
    except redis.WatchError:
        pass

# Lock: acquire, extend, reacquire, release (the last three are scripts).
lock = r.lock("resource", timeout=10)
assert lock.acquire(blocking=False), "acquire"
assert not r.lock("resource", timeout=10).acquire(blocking=False), "second acquire"
assert lock.extend(5), "extend"
assert 10000 < r.pttl("resource") <= 15000, "extended TTL"
assert lock.reacquire(), "reacquire"
lock.release()
assert not r.exists("resource"), "release"

# Keys, scans and the rest.
r.mset({"k:%d" % i: i for i in range(50)})
assert len(set(r.scan_iter(match="k:*", count=7))) == 50, "scan_iter"
assert r.rename("k:0", "k:new") and r.get("k:new") == b"0", "rename"
assert r.copy("k:1", "k:copy") and r.get("k:copy") == b"1", "copy"
assert r.setbit("bits", 7, 1) == 0 and r.getbit("bits", 7) == 1 and r.bitcount("bits") == 1, "bits"
assert r.expire("k:2", 100, nx=True) and not r.expire("k:2", 50, gt=True), "expire NX/GT"
assert r.lcs("k:10", "k:11") == b"1", "lcs"
assert r.randomkey() is not None, "randomkey"
assert "used_memory" in r.info("memory"), "info memory"
assert r.info()["redis_version"], "info"
assert r.eval("return redis.call('GET', KEYS[1])", 1, "k:3") == b"3", "eval"
assert r.client_setname("smoke") and r.client_getname() == "smoke", "client name"
assert r.ping(), "ping"
print("redis-py smoke test passed")
