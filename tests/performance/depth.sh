#!/bin/bash
# History depth x1 / x10 / x100, optionally before vs after a change, interleaved (PERFORMANCE.md,
# "History depth: rollups").
#
#   AFTER=/path/to/this/checkout [BEFORE=/path/to/old/checkout CODES="before after"] \
#   X1_URL=postgres://.../zb_ref X10_URL=postgres://.../zb_deep X100_URL=postgres://.../zb_deep100 \
#   DBS="x1 x10 x100" ROUNDS=2 ITER=80 PERIODS="1h 24h 7d 30d all" DEFAULT=1 \
#   tests/performance/depth.sh > depth.txt
#
# X1_URL holds `seed_demo --profile reference`, X10_URL `--profile deep`, X100_URL
# `--profile deep100` (all seeded by AFTER, so all have the rollups; older code ignores them).
# Each checkout needs its .venv. CODES defaults to "after" (to "before after" when BEFORE is set);
# DBS to the databases whose URL is set. Every round runs each (code, database) in turn: all five
# endpoints at the default period (when DEFAULT=1), then equity-curve and performance at each
# period; one bench_api process per run.
# Output lines: round period code db endpoint p50 p95 p99 queries bytes load-average.
set -u
ROUNDS=${ROUNDS:-2}; ITER=${ITER:-80}; PERIODS=${PERIODS:-"1h 24h 7d 30d all"}; DEFAULT=${DEFAULT:-1}
if [ -n "${BEFORE:-}" ]; then CODES=${CODES:-"before after"}; else CODES=${CODES:-after}; fi
if [ -z "${DBS:-}" ]; then
  DBS=""
  for db in x1 x10 x100; do
    var="$(echo "$db" | tr a-z A-Z)_URL"; [ -n "${!var:-}" ] && DBS="$DBS $db"
  done
fi
: "${SECRET_KEY:=bench-only-key-0123456789abcdefghijklmnopqrstuvwxyz}"
run() {
  local round=$1 period=$2 code=$3 db=$4; shift 4
  local dir=$AFTER
  [ "$code" = before ] && dir=$BEFORE
  local var; var="$(echo "$db" | tr a-z A-Z)_URL"
  local url=${!var}
  local load; load=$(cut -d' ' -f1 /proc/loadavg)
  (cd "$dir" && DATABASE_URL=$url SECRET_KEY=$SECRET_KEY DEBUG=0 \
      .venv/bin/python manage.py bench_api --iterations "$ITER" "$@" 2>/dev/null) |
    grep "^/api" | while read -r ep p50 p95 p99 q bytes; do
      echo "$round $period $code $db $ep $p50 $p95 $p99 $q $bytes $load"
    done
}
for round in $(seq 1 "$ROUNDS"); do
  if [ "$DEFAULT" = 1 ]; then
    for code in $CODES; do for db in $DBS; do run "$round" default "$code" "$db"; done; done
  fi
  for period in $PERIODS; do
    for code in $CODES; do for db in $DBS; do
      run "$round" "$period" "$code" "$db" --query "period=$period" \
        --path /api/dashboard/equity-curve --path /api/dashboard/performance
    done; done
  done
done
