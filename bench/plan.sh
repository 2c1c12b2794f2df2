#!/usr/bin/env bash
# meta plan over a fleet, measured in one run: a log of APPS apps (default
# 1,000) of 10 events each, every one following a channel a release ahead
# of it (bench/mkrepo ... fleet), planned by
#  1. `meta plan --json`, cold: the derived cache (.git/meta/cache) removed
#     before each run, as after a fresh clone;
#  2. `meta plan --json`, warm: after a read, as any later one;
#  3. the git CLI listing what the plan reads, `git ls-tree -r HEAD
#     projects` (every record's path and blob id): the floor of any plan
#     that reads the log from git, which reads no record.
# Prints medians and ratios; machines here are noisy, so trust the ratios.
#
#   bench/plan.sh [APPS] [ROUNDS]   (defaults 1000 7)
set -euo pipefail
cd "$(dirname "$0")/.."
apps=${1:-1000}
rounds=${2:-7}
out="$PWD/bench/out"
. bench/lib.sh
build
log="$out/fleet-$apps"
[ -f "$log/meta.yaml" ] || "$out/mkrepo" "$log" "$apps" 10 fleet
cold_ms=() warm_ms=() git_ms=()
for _ in $(seq "$rounds"); do
  rm -rf "$log/.git/meta/cache"
  t0=$(now_ns); (cd "$log" && "$out/meta" --offline plan --json >"$out/plan.json"); t1=$(now_ns)
  cold_ms+=("$(elapsed_ms "$t0" "$t1")")
  t0=$(now_ns); (cd "$log" && "$out/meta" --offline plan --json >"$out/plan.json"); t1=$(now_ns)
  warm_ms+=("$(elapsed_ms "$t0" "$t1")")
  t0=$(now_ns); git -C "$log" ls-tree -r HEAD projects >"$out/plan-git.out"; t1=$(now_ns)
  git_ms+=("$(elapsed_ms "$t0" "$t1")")
done
grep -q "\"upgrade\":$apps" "$out/plan.json" || { echo "the plan does not upgrade all $apps apps" >&2; exit 1; }
c=$(median "${cold_ms[@]}") w=$(median "${warm_ms[@]}") g=$(median "${git_ms[@]}")
echo "meta plan --json, $apps apps, cold: $c ms median"
echo "meta plan --json, $apps apps, warm: $w ms median"
echo "git ls-tree -r HEAD projects: $g ms median"
echo "warm / git: $(ratio "$w" "$g")x; cold / warm: $(ratio "$c" "$w")x"
