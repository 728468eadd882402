#!/bin/bash
# Counts instructions and simulated cache misses per timed decision of benches/router.rs at
# 10k agents / 100k waiting: repeatable figures on a noisy machine (docs/performance.md).
#
# usage: contrib/bench/router-callgrind.sh BENCH_BINARY arrival|agent_free [seconds [zero_after]]
# where BENCH_BINARY is what `cargo bench --bench router --no-run` prints as its executable.
#
# With `zero_after`, the counters are reset that many seconds into the run, so the figures
# cover only the rest of it: the steady state, once the ready lines have filled with stale
# entries and most routing classes exist (the first minutes under valgrind are not like the
# rest). `330 180` was used for the fourth pass's figures. Runs of the same binary give the
# same counts per decision whatever else the machine is doing.
set -euo pipefail
bin=$1; group=$2; secs=${3:-4}; zero_after=${4:-}
fn=timed_arrivals; [ "$group" = agent_free ] && fn=timed_ready
out=$(mktemp -d)/callgrind.out
ROUTER_BENCH=$group valgrind --tool=callgrind --callgrind-out-file="$out" \
  --toggle-collect="*$fn*" --cache-sim=yes --LL=1048576,16,64 \
  "$bin" --bench "$group/router/10000_agents/100000" --profile-time "$secs" > "$out.log" 2>&1 &
valgrind_pid=$!
if [ -n "$zero_after" ]; then
  sleep "$zero_after"
  callgrind_control --zero "$valgrind_pid" > /dev/null 2>&1
fi
wait "$valgrind_pid"
callgrind_annotate --inclusive=yes "$out" > "$out.inc" 2>/dev/null
python3 - "$out" "$out.inc" "$fn" <<'PY'
import re, sys
raw, inclusive, timed = sys.argv[1], sys.argv[2], sys.argv[3]
# Decisions counted: calls into Router::handle from the timed function (after any reset).
names, calls, caller, callee = {}, 0, "", ""
for line in open(raw):
    m = re.match(r"(c?fn)=\((\d+)\)(?: (.*))?", line)
    if m:
        kind, ident, name = m.groups()
        if name:
            names[ident] = name.strip()
        if kind == "fn":
            caller = names.get(ident, "")
        else:
            callee = names.get(ident, "")
        continue
    m = re.match(r"calls=(\d+)", line)
    if m and timed in caller and "Router::handle" in callee:
        calls += int(m.group(1))
lines = open(inclusive).read().split("\n")
def counts(line):
    fields = re.findall(r"([\d,]+|\.)\s+(?:\([^)]*\))?", line)[:9]
    return [int(x.replace(",", "")) if x != "." else 0 for x in fields]
total = next(counts(l) for l in lines if "PROGRAM TOTALS" in l)
# New routing classes are created during warm-up; their cost is left out.
creation = next((counts(l) for l in lines if "Router::class_for" in l), [0] * 9)
ir, _, _, i1, d1r, d1w, il, dlr, dlw = [a - b for a, b in zip(total, creation)]
events = max(calls, 1)
print(f"{calls} timed events; per decision: Ir {ir / events:.0f}, "
      f"L1 misses {(d1r + d1w) / events:.1f}, L2 misses {(dlr + dlw) / events:.1f}")
PY
