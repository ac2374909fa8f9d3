#!/usr/bin/env bash
# The whole benchmark on this machine, in one run:
#   a fresh PostgreSQL database and a fresh Redis queue name, `eye api` + `eye worker` (release build),
#   an application created over HTTP, then `eye-bench run` (every phase) writing bench/results/<stamp>.json.
#   With EYE_BENCH_APIS / EYE_BENCH_WORKERS it starts several of each on the same database and queue (scale-out;
#   bench/scale.sh runs the 1/2/4 series).
# Extra arguments go to `eye-bench run`, e.g. `bench/run.sh --connections 64 --accept-duration 10s`.
#
# Environment (all optional):
#   CARGO_TARGET_DIR      where the release binaries are built (default: ./target)
#   EYE_BENCH_NO_BUILD=1  use the binaries as they are
#   EYE_BIN, EYE_BENCH_BIN  explicit binaries (default: $CARGO_TARGET_DIR/release/{eye,eye-bench})
#   EYE_BENCH_PG          server URL without database (default: postgres://postgres@127.0.0.1:5432)
#   EYE_REDIS_URL         default: redis://127.0.0.1:6379
#   EYE_BENCH_PORT        the first API's port (default: 18080); ports alternate from there:
#                         api i on port + 2i, worker j's metrics (EYE_OPS_BIND) on port + 2j + 1
#   EYE_BENCH_APIS        how many `eye api` processes (default: 1); the load is spread over them round-robin
#   EYE_BENCH_WORKERS     how many `eye worker` processes (default: 1); their stored counters are summed
#   EYE_BENCH_OUT         the JSON report (default: bench/results/<stamp>.json)
#   EYE_BENCH_DB_PARAMS   query string appended to the service's database URL, e.g. sslmode=disable
#   EYE_BENCH_KEEP_DB=1   keep the database afterwards (it is dropped by default)
#   EYE_BENCH_ACCEPT_SHAPES  only accept phases, in this order (batch, single, segment), e.g. "batch segment"
#   EYE_WORKER_CONCURRENCY, EYE_DATABASE_MAX_CONNECTIONS, ...: passed through to the service
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$root/target}
eye_bin=${EYE_BIN:-$target_dir/release/eye}
bench_bin=${EYE_BENCH_BIN:-$target_dir/release/eye-bench}
pg=${EYE_BENCH_PG:-postgres://postgres@127.0.0.1:5432}
redis_url=${EYE_REDIS_URL:-redis://127.0.0.1:6379}
port=${EYE_BENCH_PORT:-18080}
stamp=$(date -u +%Y%m%dt%H%M%Sz)
db=eye_bench_$stamp
queue=eye:bench:$stamp
token=bench-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
out=${EYE_BENCH_OUT:-$root/bench/results/$stamp.json}
logs=${TMPDIR:-/tmp}/eye-bench-$stamp
apis=${EYE_BENCH_APIS:-1}
workers=${EYE_BENCH_WORKERS:-1}
[[ "$apis" =~ ^[1-9][0-9]*$ && "$workers" =~ ^[1-9][0-9]*$ ]] ||
    { echo "EYE_BENCH_APIS and EYE_BENCH_WORKERS must be positive whole numbers" >&2; exit 2; }
# api i listens on port + 2i and worker j serves its metrics on port + 2j + 1: with one of each, the layout
# of earlier runs (18080, 18081), and any counts never collide.
api_urls=() worker_metrics=()
for ((i = 0; i < apis; i++)); do api_urls+=("http://127.0.0.1:$((port + 2 * i))"); done
for ((j = 0; j < workers; j++)); do worker_metrics+=("http://127.0.0.1:$((port + 2 * j + 1))/metrics"); done
base=${api_urls[0]}
mkdir -p "$logs" "$root/bench/results"

if [[ "${EYE_BENCH_NO_BUILD:-}" != 1 ]]; then
    echo "building release binaries (cargo may wait for the target directory lock)" >&2
    (cd "$root" && cargo build --release -p eye-server -p eye-bench)
fi

# Something already answering on one of the ports would be measured instead of this run's processes.
for url in "${api_urls[@]}" "${worker_metrics[@]}"; do
    if curl -s -o /dev/null --max-time 1 "$url"; then
        echo "$url already answers: choose another EYE_BENCH_PORT" >&2
        exit 1
    fi
done

api_pids= worker_pids=
cleanup() {
    for pid in $api_pids $worker_pids; do kill "$pid" 2>/dev/null || true; done
    for pid in $api_pids $worker_pids; do wait "$pid" 2>/dev/null || true; done
    redis-cli -u "$redis_url" --scan --pattern "$queue*" | xargs -r -n 500 redis-cli -u "$redis_url" del >/dev/null || true
    if [[ "${EYE_BENCH_KEEP_DB:-}" != 1 ]]; then
        psql -q "$pg/postgres" -c "DROP DATABASE IF EXISTS $db" || true
    else
        echo "kept database $db" >&2
    fi
    echo "service logs: $logs" >&2
}
trap cleanup EXIT

psql -q "$pg/postgres" -c "CREATE DATABASE $db"
db_url=$pg/$db${EYE_BENCH_DB_PARAMS:+?$EYE_BENCH_DB_PARAMS}
export EYE_DATABASE_URL=$db_url EYE_REDIS_URL=$redis_url EYE_QUEUE_NAME=$queue EYE_ADMIN_TOKEN=$token
# The SQLite queue is unused with Redis, but its directory is created at start: keep it out of the tree.
export EYE_BIND=127.0.0.1:$port RUST_LOG=${RUST_LOG:-warn} EYE_QUEUE_PATH=$logs/queue.db
# The service runs as the Dockerfile and docker-compose.yml run it: two glibc malloc arenas.
export MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2}
# Every process may open this many connections; past PostgreSQL's max_connections they fail at random.
pool=${EYE_DATABASE_MAX_CONNECTIONS:-16}
max_connections=$(psql -Atq "$pg/postgres" -c "SHOW max_connections")
if ((pool * (apis + workers) + 8 > max_connections)); then
    echo "warning: $((apis + workers)) processes x $pool connections (EYE_DATABASE_MAX_CONNECTIONS) + the" \
        "harness may exceed PostgreSQL's max_connections ($max_connections)" >&2
fi
"$eye_bin" migrate
for ((i = 0; i < apis; i++)); do
    EYE_BIND=127.0.0.1:$((port + 2 * i)) "$eye_bin" api >"$logs/api-$i.log" 2>&1 &
    api_pids+=" $!"
done
# Each worker serves its metrics beside the APIs: the harness follows progress there, not with count(*).
for ((j = 0; j < workers; j++)); do
    EYE_OPS_BIND=127.0.0.1:$((port + 2 * j + 1)) "$eye_bin" worker >"$logs/worker-$j.log" 2>&1 &
    worker_pids+=" $!"
done

ready() { curl -sf "${1%/metrics}/ready" >/dev/null; }
for url in "${api_urls[@]}" "${worker_metrics[@]}"; do
    for _ in $(seq 1 100); do
        ready "$url" && break
        sleep 0.2
    done
    ready "$url" || { echo "$url did not become ready; see $logs" >&2; exit 1; }
done

app=$(curl -sf -X POST "$base/v1/admin/applications" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' -d "{\"name\": \"bench-$stamp\"}")
echo "database $db_url, queue $queue, api pids$api_pids, worker pids$worker_pids," \
    "load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
comma() { local IFS=,; echo "$*"; }
urls=$(comma "${api_urls[@]}")

if [[ -n "${EYE_BENCH_ACCEPT_SHAPES:-}" ]]; then
    # Only accept phases, one after another on the same service (e.g. "batch segment batch segment"), so
    # two endpoints are compared under the same load; writes a JSON array of their results.
    first=0
    for shape in $EYE_BENCH_ACCEPT_SHAPES; do
        echo "accept $shape, load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
        EYE_BENCH_KEY=$(jq -r .ingest_key <<<"$app") EYE_BENCH_URL=$urls \
            "$bench_bin" accept --shape "$shape" --first-event "$first" "$@" \
            | jq -c --arg shape "$shape" '{shape: $shape} + .' >>"$logs/accept.jsonl"
        first=$((first + 5000000))
    done
    jq -s . "$logs/accept.jsonl" >"$out"
    jq -r '.[] | "\(.shape)\t\(.events_per_s | floor) events/s\tp99 \(.latency.p99_ms // "-") ms\tfailures \(.failures)"' "$out"
    echo "JSON: $out"
    exit 0
fi

EYE_BENCH_KEY=$(jq -r .ingest_key <<<"$app") \
EYE_BENCH_APPLICATION=$(jq -r .id <<<"$app") \
EYE_BENCH_DATABASE_URL=$pg/$db \
EYE_BENCH_URL=$urls \
EYE_BENCH_WORKER_METRICS=$(comma "${worker_metrics[@]}") \
    "$bench_bin" run --api-pid "$(comma $api_pids)" --worker-pid "$(comma $worker_pids)" --out "$out" "$@"
