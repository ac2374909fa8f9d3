#!/usr/bin/env bash
# How many pushes one Redis takes through worker/src/queue/push.lua (docs/scaling.md). Writes under its
# own key prefix only, deletes those keys after each run. Needs redis-cli and redis-benchmark.
#   REDIS_HOST=127.0.0.1 REDIS_PORT=6379 docs/scaling/measure-push.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
host=${REDIS_HOST:-127.0.0.1}
port=${REDIS_PORT:-6379}
prefix="eye:scaling:$$:{bench}"
cleanup() { redis-cli -h "$host" -p "$port" --scan --pattern "eye:scaling:$$:*" | xargs -r -n 500 redis-cli -h "$host" -p "$port" unlink >/dev/null; }
trap cleanup EXIT
sha=$(redis-cli -h "$host" -p "$port" SCRIPT LOAD "$(cat "$here/../../worker/src/queue/push.lua")")
# 22,000 bytes: a job of 100 events of the benchmark's workload; 300 bytes: a one-event job.
for size in 22000 300; do
  payload=$(head -c "$size" /dev/zero | tr '\0' 'x')
  for round in 1 2; do
    printf 'job of %s bytes, round %s: ' "$size" "$round"
    redis-benchmark -h "$host" -p "$port" -n 3000 -c 8 -r 1000000000 --csv \
      EVALSHA "$sha" 4 "$prefix:data" "$prefix:active" "$prefix:signal" "$prefix:meta" \
      99999999999999 job:__rand_int__ "$payload" 0 25 '{}' 2>&1 | tail -1 | awk -F'","' '{print $2 " pushes/s, avg " $3 " ms, p99 " $7 " ms"}'
    cleanup
  done
done
