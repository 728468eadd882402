#!/bin/bash
# Counts instructions and simulated cache misses per timed decision of benches/router.rs at
# 10k agents / 100k waiting: repeatable figures on a noisy machine (docs/performance.md).
#
# usage: contrib/bench/router-callgrind.sh BENCH_BINARY arrival|agent_free [seconds]
# where BENCH_BINARY is what `cargo bench --bench router --no-run` prints as its executable.
set -euo pipefail
bin=$1; group=$2; secs=${3:-4}
fn=timed_arrivals; [ "$group" = agent_free ] && fn=timed_ready
out=$(mktemp -d)/callgrind.out
ROUTER_BENCH=$group valgrind --tool=callgrind --callgrind-out-file="$out" \
  --toggle-collect="*$fn*" --cache-sim=yes --LL=1048576,16,64 \
  "$bin" --bench "$group/router/10000_agents/100000" --profile-time "$secs" > "$out.log" 2>&1
events=$(grep -oE "in [0-9]+ timed events" "$out.log" | grep -v "in 0 " | awk '{print $2}')
callgrind_annotate --inclusive=yes "$out" > "$out.inc" 2>/dev/null
python3 - "$out.inc" "$events" <<'PY'
import re, sys
lines = open(sys.argv[1]).read().split("\n")
events = int(sys.argv[2])
def counts(line):
    fields = re.findall(r"([\d,]+|\.)\s+(?:\([^)]*\))?", line)[:9]
    return [int(x.replace(",", "")) if x != "." else 0 for x in fields]
total = next(counts(l) for l in lines if "PROGRAM TOTALS" in l)
# New routing classes are created during warm-up; their cost is left out.
creation = next((counts(l) for l in lines if "Router::class_for" in l), [0] * 9)
ir, _, _, i1, d1r, d1w, il, dlr, dlw = [a - b for a, b in zip(total, creation)]
print(f"{events} timed events; per decision: Ir {ir / events:.0f}, "
      f"L1 misses {(d1r + d1w) / events:.1f}, L2 misses {(dlr + dlw) / events:.1f}")
PY
