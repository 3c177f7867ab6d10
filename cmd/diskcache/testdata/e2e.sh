#!/usr/bin/env bash
# End-to-end test of a diskcache server (or any Redis) with the real
# redis-cli and redis-benchmark. Usage: PORT=6380 [HOST=127.0.0.1] e2e.sh
# Set BENCH=0 to skip the redis-benchmark run. Exits non-zero on a failure.
set -euo pipefail

HOST=${HOST:-127.0.0.1}
PORT=${PORT:?set PORT to the server port}
REDIS_CLI=${REDIS_CLI:-redis-cli}
REDIS_BENCHMARK=${REDIS_BENCHMARK:-redis-benchmark}
BENCH=${BENCH:-1}
failures=0

cli() { "$REDIS_CLI" -h "$HOST" -p "$PORT" "$@"; }

# check WANT CMD...: the output of redis-cli CMD... must be WANT exactly.
check() {
	local want=$1 got
	shift
	got=$(cli "$@" 2>&1) || true
	if [[ "$got" != "$want" ]]; then
		printf 'FAIL: %s\n  got:  %q\n  want: %q\n' "$*" "$got" "$want" >&2
		failures=$((failures + 1))
	fi
}

# check_match REGEX CMD...: the output must match the extended regex.
check_match() {
	local re=$1 got
	shift
	got=$(cli "$@" 2>&1) || true
	if ! [[ "$got" =~ $re ]]; then
		printf 'FAIL: %s\n  got:  %q\n  want to match: %s\n' "$*" "$got" "$re" >&2
		failures=$((failures + 1))
	fi
}

check PONG PING
check OK FLUSHDB
check OK SET greeting hello
check hello GET greeting
check "" GET missing
check OK SET temp v EX 100
check_match '^(99|100)$' TTL temp
check_match '^[0-9]{5}$' PTTL temp
check -1 TTL greeting
check -2 TTL missing
check OK SET brief v PX 100
sleep 0.3
check "" GET brief
check 0 DEL brief # expired: not counted, and no longer in DBSIZE
check 2 EXISTS greeting temp missing
check 1 DEL greeting missing
check 0 EXISTS greeting
check 1 INCR counter
check 42 INCRBY counter 41
check 41 DECR counter
check "ERR value is not an integer or out of range" INCR temp
check OK MSET a 1 b 2
check $'1\n2' MGET a b
check string TYPE a

# 100 keys through redis-cli's stdin, then SCAN them back.
for i in $(seq 1 100); do echo "SET key:$i v$i"; done | cli >/dev/null
got=$(cli --scan --pattern 'key:*' | sort -u | wc -l | tr -d ' ')
if [[ "$got" != 100 ]]; then
	echo "FAIL: SCAN MATCH key:* found $got keys, want 100" >&2
	failures=$((failures + 1))
fi
check_match '^[0-9]+'$'\n''' SCAN 0 MATCH 'key:1*' COUNT 1000
check 104 DBSIZE
check_match 'redis_version:' INFO server
check_match 'db0:keys=104' INFO keyspace
check_match 'connected_clients:' INFO
check OK FLUSHDB
check 0 DBSIZE

if [[ "$BENCH" != 0 ]]; then
	out=$("$REDIS_BENCHMARK" -h "$HOST" -p "$PORT" -t set,get,incr -n 100000 -P 16 -q 2>&1) || {
		echo "FAIL: redis-benchmark exited with $?: $out" >&2
		failures=$((failures + 1))
	}
	echo "$out" | tr '\r' '\n' | grep -E '^(SET|GET|INCR): .*requests per second' | sed 's/^/  /' || true
	if grep -qiE 'error|ERR ' <<<"$out"; then
		echo "FAIL: redis-benchmark reported errors:" >&2
		echo "$out" | tr '\r' '\n' | grep -iE 'error|ERR ' >&2
		failures=$((failures + 1))
	fi
	for t in SET GET INCR; do
		if ! tr '\r' '\n' <<<"$out" | grep -qE "^$t: [0-9.]+ requests per second"; then
			echo "FAIL: redis-benchmark has no result for $t" >&2
			failures=$((failures + 1))
		fi
	done
fi

if ((failures > 0)); then
	echo "e2e: $failures failures" >&2
	exit 1
fi
echo "e2e: all checks passed"
