#!/bin/bash
# Runs two builds of benches/router.rs at the same time, one per core, swapping cores each
# round, and prints each one's median time per decision at 10k agents / 100k waiting. Both
# share whatever else the machine is doing, which a one-after-the-other comparison on this
# noisy machine does not (docs/performance.md).
#
# usage: contrib/bench/router-ab.sh arrival|agent_free ROUNDS BINARY_A BINARY_B
# where each BINARY is what `cargo bench --bench router --no-run` printed, copied aside.
set -euo pipefail
group=$1; rounds=$2; a=$3; b=$4
median() {
  ROUTER_BENCH=$group taskset -c "$1" "$2" --bench "$group/router/10000_agents/100000" \
    --noplot --warm-up-time 3 --measurement-time 5 2>/dev/null |
    grep -A1 "$group/router/10000_agents/100000" | grep -oE 'time: +\[[^]]*\]' | awk '{print $4, $5}'
}
out=$(mktemp -d)
for round in $(seq "$rounds"); do
  core_a=$(( round % 2 )); core_b=$(( 1 - core_a ))
  median "$core_a" "$a" > "$out/a" & median "$core_b" "$b" > "$out/b"; wait
  echo "round $round: A $(cat "$out/a"), B $(cat "$out/b")"
done
