"""W8's python-diskcache process: python-diskcache's multi-process example.

Opens the cache directory, sets one key with a TTL and closes it, as each of
the example's processes does; the harness starts four at a time. It imports
only what that needs, so that interpreter start is what its users pay.

    python3 pyopensetclose.py DIR KEY VALUE TTL_SECONDS

It prints what each step took as one JSON line in the harness's result format.
"""

import json
import sys
import time

import diskcache


def main():
    d, key, value, ttl = sys.argv[1], sys.argv[2], sys.argv[3].encode(), float(sys.argv[4])
    m = {}
    res = {"metrics": m}
    try:
        t0 = time.perf_counter()
        c = diskcache.Cache(d)
        t1 = time.perf_counter()
        m["open_s"] = t1 - t0
        c.set(key, value, expire=ttl)
        t2 = time.perf_counter()
        m["set_s"] = t2 - t1
        c.close()
        m["close_s"] = time.perf_counter() - t2
    except Exception as e:  # reported by the harness
        res["error"] = "%s: %s" % (type(e).__name__, e)
    print(json.dumps(res), flush=True)
    sys.exit(1 if "error" in res else 0)


if __name__ == "__main__":
    main()
