#!/bin/bash
# History depth x1 vs x10, before vs after, interleaved (PERFORMANCE.md, "History depth: rollups").
#
#   BEFORE=/path/to/old/checkout AFTER=/path/to/this/checkout \
#   X1_URL=postgres://.../zb_ref X10_URL=postgres://.../zb_deep \
#   ROUNDS=2 ITER=80 PERIODS="1h 24h 7d 30d all" DEFAULT=1 tests/performance/depth.sh > depth.txt
#
# X1_URL holds `seed_demo --profile reference`, X10_URL `seed_demo --profile deep` (both seeded
# by AFTER, so both have the rollups; the old code ignores them). Each checkout needs its .venv.
# Every round runs each (code, database) in turn: all five endpoints at the default period (when
# DEFAULT=1), then equity-curve and performance at each period; one bench_api process per run.
# Output lines: round period code db endpoint p50 p95 p99 queries bytes load-average.
set -u
ROUNDS=${ROUNDS:-2}; ITER=${ITER:-80}; PERIODS=${PERIODS:-"1h 24h 7d 30d all"}; DEFAULT=${DEFAULT:-1}
: "${SECRET_KEY:=bench-only-key-0123456789abcdefghijklmnopqrstuvwxyz}"
run() {
  local round=$1 period=$2 code=$3 db=$4; shift 4
  local dir=$AFTER url=$X1_URL
  [ "$code" = before ] && dir=$BEFORE
  [ "$db" = x10 ] && url=$X10_URL
  local load; load=$(cut -d' ' -f1 /proc/loadavg)
  (cd "$dir" && DATABASE_URL=$url SECRET_KEY=$SECRET_KEY DEBUG=0 \
      .venv/bin/python manage.py bench_api --iterations "$ITER" "$@" 2>/dev/null) |
    grep "^/api" | while read -r ep p50 p95 p99 q bytes; do
      echo "$round $period $code $db $ep $p50 $p95 $p99 $q $bytes $load"
    done
}
for round in $(seq 1 "$ROUNDS"); do
  if [ "$DEFAULT" = 1 ]; then
    for code in before after; do for db in x1 x10; do run "$round" default $code $db; done; done
  fi
  for period in $PERIODS; do
    for code in before after; do for db in x1 x10; do
      run "$round" "$period" $code $db --query "period=$period" \
        --path /api/dashboard/equity-curve --path /api/dashboard/performance
    done; done
  done
done
