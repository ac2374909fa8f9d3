#!/usr/bin/env bash
# Waits until the worker has handled every event the server accepted, so that the next step can read
# them: polls the server's /metrics until stored + duplicate + refused events reach the accepted ones.
# Meant for `eye serve` (API and worker in one process, whose counters start at 0 when it starts).
#
#   [EYE_URL=http://127.0.0.1:8080] scripts/wait-for-worker.sh [TIMEOUT_SECONDS (default 120)]
set -euo pipefail
url="${EYE_URL:-http://127.0.0.1:8080}"
timeout="${1:-120}"

# The sum of one counter over all its labels (0 while it has none).
counter() {
  awk -v name="$1" '$1 == name || index($1, name "{") == 1 { sum += $2 } END { print sum + 0 }' <<<"$metrics"
}

deadline=$((SECONDS + timeout))
while :; do
  metrics=$(curl -sf "$url/metrics") || metrics=""
  accepted=$(counter eye_events_accepted_total)
  stored=$(counter eye_events_stored_total)
  duplicates=$(counter eye_events_duplicate_total)
  refused=$(counter eye_events_refused_total)
  handled=$((stored + duplicates + refused))
  if [ -n "$metrics" ] && [ "$handled" -ge "$accepted" ]; then
    echo "$handled of $accepted accepted events handled ($stored stored, $duplicates duplicates, $refused refused)"
    exit 0
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "after ${timeout}s the worker has handled $handled of $accepted accepted events ($url/metrics)" >&2
    exit 1
  fi
  sleep 0.2
done
