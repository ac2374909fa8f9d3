#!/usr/bin/env bash
# Replays a JSON file of events (an array, in order) through `POST /v1/event`, one event per request,
# waiting for each 202 before sending the next, as the app would.
#
#   EYE_URL=http://127.0.0.1:8080 EYE_KEY=<ingest key> scripts/replay.sh scripts/fitness-sample.json
set -euo pipefail
file="${1:?usage: EYE_KEY=<ingest key> [EYE_URL=http://127.0.0.1:8080] $0 FILE.json}"
url="${EYE_URL:-http://127.0.0.1:8080}"
key="${EYE_KEY:?set EYE_KEY to an ingest key}"
python3 -c 'import json, sys; [print(json.dumps(e)) for e in json.load(open(sys.argv[1]))]' "$file" |
while IFS= read -r event; do
  status=$(curl -s -o /dev/stderr -w '%{http_code}' -X POST "$url/v1/event" \
    -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -d "$event")
  echo " <- $status" >&2
  [ "$status" = 202 ] || { echo "replay stopped: $event" >&2; exit 1; }
done
