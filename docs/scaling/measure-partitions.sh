#!/usr/bin/env bash
# Insert and query cost of `events` unpartitioned against hash-partitioned by application (docs/scaling.md).
# Creates its own database, runs alternating pgbench rounds, drops the database. Needs psql and pgbench.
#   PGURL=postgres://postgres@127.0.0.1:5432 ROUNDS=2 TXNS=500 docs/scaling/measure-partitions.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
base=${PGURL:-postgres://postgres@127.0.0.1:5432}
rounds=${ROUNDS:-2}
txns=${TXNS:-500}            # per client; 4 clients x 500 x 100 rows = 200,000 rows per run
db=eye_scaling_$(date +%s)
work=$(mktemp -d)
trap 'psql "$base/postgres" -qc "DROP DATABASE IF EXISTS $db" >/dev/null; rm -rf "$work"' EXIT
psql "$base/postgres" -qc "CREATE DATABASE $db"
psql "$base/$db" -q -v ON_ERROR_STOP=1 -f "$here/partition-schema.sql"

for t in plain hash; do
  # One job's worth: 100 events of one application, as the worker inserts them.
  cat > "$work/insert_$t.sql" <<SQL
\set app random(1, 20)
INSERT INTO events_$t (event_id, application_id, session_id, category, name, data, "timestamp", sent_at, received_at, stored_at, user_id, device_id)
SELECT gen_random_uuid(), ('00000000-0000-0000-0000-0000000000' || lpad(:app::text, 2, '0'))::uuid,
       's' || (random() * 10000)::int, 'category' || (g % 4), 'name' || (g % 8), '{"path": "/", "host": "www.ca.com"}'::jsonb,
       now() - (random() * 2500000) * interval '1 second', now(), now(), now(), 'u' || (random() * 20000)::int, 'd' || g
FROM generate_series(1, 100) g
ON CONFLICT (application_id, event_id) DO NOTHING;
SQL
  # A session's events (one application: pruned to one partition).
  cat > "$work/q_app_$t.sql" <<SQL
\set app random(1, 20)
\set s random(1, 10000)
SELECT * FROM events_$t WHERE application_id = ('00000000-0000-0000-0000-0000000000' || lpad(:app::text, 2, '0'))::uuid AND session_id = 's' || :s ORDER BY "timestamp", id LIMIT 100;
SQL
  # A day's counts per hour and category over every application (every partition).
  cat > "$work/q_all_$t.sql" <<SQL
SELECT date_trunc('hour', "timestamp" AT TIME ZONE 'UTC'), category, count(*) FROM events_$t WHERE "timestamp" >= now() - interval '1 day' GROUP BY 1, 2;
SQL
done

for round in $(seq 1 "$rounds"); do
  for t in plain hash; do
    printf 'insert round %s %-5s load %s: ' "$round" "$t" "$(cut -d' ' -f1 /proc/loadavg)"
    pgbench "$base/$db" -n -c 4 -j 2 -t "$txns" -f "$work/insert_$t.sql" 2>&1 | grep -E '^tps' | cut -d' ' -f1-3
  done
done
psql "$base/$db" -qc 'VACUUM ANALYZE events_plain' -c 'VACUUM ANALYZE events_hash'
for round in $(seq 1 "$rounds"); do
  for t in plain hash; do
    printf 'query round %s %-5s session: ' "$round" "$t"
    pgbench "$base/$db" -n -c 1 -t 500 -f "$work/q_app_$t.sql" 2>&1 | grep 'latency average'
    printf 'query round %s %-5s all-apps counts: ' "$round" "$t"
    pgbench "$base/$db" -n -c 1 -t 30 -f "$work/q_all_$t.sql" 2>&1 | grep 'latency average'
  done
done
