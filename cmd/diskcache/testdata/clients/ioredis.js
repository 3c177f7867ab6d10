// Smoke test of diskcache serve with ioredis. Usage: node ioredis.js HOST PORT
// (ioredis resolvable through NODE_PATH). Exits non-zero on the first failure.
const Redis = require("ioredis");
const assert = require("assert");

async function main() {
  const [host, port] = process.argv.slice(2);
  const r = new Redis({ host, port: Number(port), maxRetriesPerRequest: 1 });
  try {
    await r.flushdb();
    // Pipeline and transaction.
    const piped = await r.pipeline().set("a", "1").incr("a").get("a").exec();
    assert.deepStrictEqual(piped, [[null, "OK"], [null, 2], [null, "2"]]);
    const tx = await r.multi().set("b", "x").append("b", "y").getrange("b", 0, -1).exec();
    assert.deepStrictEqual(tx, [[null, "OK"], [null, 2], [null, "xy"]]);
    // WATCH aborts on a change by another client.
    const other = new Redis({ host, port: Number(port) });
    await r.watch("w");
    await other.set("w", "changed");
    assert.strictEqual(await r.multi().set("w", "mine").exec(), null);
    other.disconnect();
    // A lock as the usual recipe takes and releases it.
    assert.strictEqual(await r.set("lock", "tok", "PX", 10000, "NX"), "OK");
    assert.strictEqual(await r.set("lock", "tok2", "PX", 10000, "NX"), null);
    r.defineCommand("unlock", {
      numberOfKeys: 1,
      lua: "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end",
    });
    assert.strictEqual(await r.unlock("lock", "tok"), 1);
    assert.strictEqual(await r.exists("lock"), 0);
    // Scan.
    await r.mset(Object.fromEntries(Array.from({ length: 40 }, (_, i) => ["k:" + i, String(i)])));
    const seen = new Set();
    await new Promise((resolve, reject) => {
      const s = r.scanStream({ match: "k:*", count: 7 });
      s.on("data", (keys) => keys.forEach((k) => seen.add(k)));
      s.on("end", resolve);
      s.on("error", reject);
    });
    assert.strictEqual(seen.size, 40);
    assert.strictEqual(await r.incrbyfloat("f", "0.1"), "0.1");
    assert.strictEqual(await r.incrbyfloat("f", "0.2"), "0.3");
    console.log("ioredis smoke test passed");
  } finally {
    r.disconnect();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
