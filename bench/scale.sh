#!/usr/bin/env bash
# Scale-out series: bench/run.sh with N `eye api` and N `eye worker` processes on one PostgreSQL and one
# Redis, for each N of the series, then one table to find where PostgreSQL saturates.
#   bench/scale.sh                       # N = 1, 2, 4, each a short run (the defaults below)
#   bench/scale.sh --e2e-events 500000 --query-events 0 --query-iterations 20 --accept-duration 20s
# Arguments replace the default `eye-bench run` arguments as a whole (clap refuses an argument given twice).
# Each run writes bench/results/scale-<stamp>-<n>.json (one stamp for the series).
#
# Environment (all optional), besides everything bench/run.sh reads:
#   EYE_BENCH_SERIES   the process counts, e.g. "1 2 4 8" (default: "1 2 4")
#   EYE_BENCH_NO_BUILD=1  as in run.sh; the binaries are built once here, not before every run
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
series=${EYE_BENCH_SERIES:-1 2 4}
stamp=$(date -u +%Y%m%dt%H%M%Sz)
# --query-events 0 skips the fill (the queries then run on the end-to-end phase's rows, briefly).
defaults=(--e2e-events 200000 --query-events 0 --query-iterations 20 --accept-duration 10s)
args=("$@")
[[ $# -gt 0 ]] || args=("${defaults[@]}")

if [[ "${EYE_BENCH_NO_BUILD:-}" != 1 ]]; then
    echo "building release binaries (cargo may wait for the target directory lock)" >&2
    (cd "$root" && cargo build --release -p eye-server -p eye-bench)
fi

reports=()
for n in $series; do
    out=$root/bench/results/scale-$stamp-$n.json
    echo "=== $n api + $n worker processes: ${args[*]}" >&2
    if EYE_BENCH_NO_BUILD=1 EYE_BENCH_APIS=$n EYE_BENCH_WORKERS=$n EYE_BENCH_OUT=$out \
        "$root/bench/run.sh" "${args[@]}"; then
        reports+=("$out")
    else
        echo "=== the run with $n processes failed; the series goes on" >&2
    fi
done
[[ ${#reports[@]} -gt 0 ]] || { echo "no run finished" >&2; exit 1; }

# One row per run. CPU seconds are the end-to-end phase's (postgres and redis machine-wide); "pg cores" is
# PostgreSQL's CPU over that phase's wall time: near the machine's core count, PostgreSQL is the limit.
# "load" is the 1-minute load average before the run (other work on the machine skews every number).
echo
echo "Scale-out series $stamp ($(nproc) CPUs; end-to-end phase CPU seconds per role; peak RSS, largest process)"
row() { printf '%-9s %11s %11s %9s %8s %8s %8s %9s %8s %7s %8s %8s %7s\n' "$@"; }
row processes "accept b/s" "accept 1/s" "e2e /s" "cpu api" "cpu wrk" "cpu pg" "cpu redis" "pg cores" \
    "e2e s" "rss api" "rss wrk" load
for report in "${reports[@]}"; do
    jq -r '
        def r: if . == null then "-" else (. * 10 | round / 10 | tostring) end;
        .phases as $p | $p.e2e.cpu_s as $c |
        [ "\(.processes.apis)+\(.processes.workers)",
          ($p.accept_batch.events_per_s | floor), ($p.accept_single.events_per_s | floor),
          ($p.e2e.events_per_s | floor),
          ($c.api | r), ($c.worker | r), ($c.postgres | r), ($c.redis | r),
          (if $p.e2e.elapsed_s > 0 then $c.postgres / $p.e2e.elapsed_s else null end | r),
          ($p.e2e.elapsed_s | r), (.peak_rss_mib.api | r), (.peak_rss_mib.worker | r),
          (.machine.load_before[0] | r)
        ] | @tsv' "$report"
done | while IFS=$'\t' read -r -a cells; do row "${cells[@]}"; done
printf 'JSON: %s\n' "${reports[@]}"
