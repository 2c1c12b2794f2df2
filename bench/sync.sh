#!/usr/bin/env bash
# Operator sync, measured in one run on logs served by a bare remote on disk:
#  1. `meta append` (fetch, commit, push) against the git CLI doing the same
#     by hand (git pull --ff-only, add one file, commit, push) on the same
#     remote, rounds interleaved, in a log of 10,000 events;
#  2. throughput: appends per second reaching the remote with 1, 4 and 16
#     writers, each with a clone and a process of its own;
#  3. incremental sync of one new event into clones of logs with 1k, 10k
#     and 100k events: it should not grow with history.
# Prints medians and ratios; machines here are noisy, so trust the ratios.
#
#   bench/sync.sh [ROUNDS]      (default 15; logs are kept in bench/out)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-15}
out=bench/out
. bench/lib.sh
build

# shared N APPS PER_APP: a bare remote holding a log of N events.
shared() {
  local base="$out/shared-$1"
  if [ ! -d "$base/remote.git" ]; then
    fixture "$out/log-$1" "$2" "$3"
    mkdir -p "$base"
    git clone -q --bare "$out/log-$1" "$base/remote.git"
  fi
  echo "$base"
}

# join BASE NAME: a fresh meta clone of BASE's remote.
join() {
  rm -rf "$1/$2"
  "$out/meta" init "$1/$2" --remote "$1/remote.git" >/dev/null
}

echo "1. append with push, 10,000 events (median of $rounds)"
base=$(shared 10000 100 100)
join "$base" m
rm -rf "$base/g"; git clone -q "$base/remote.git" "$base/g"; mkdir -p "$base/g/by-hand"
meta=() bygit=()
for i in $(seq "$rounds"); do
  t0=$(now_ns); "$out/meta" --dir "$base/m" append note app1.example.com -m bench >/dev/null; t1=$(now_ns)
  meta+=("$(elapsed_ms "$t0" "$t1")")
  f="by-hand/$i-$RANDOM"
  t0=$(now_ns)
  git -C "$base/g" pull -q --ff-only && head -c 180 /dev/urandom >"$base/g/$f" && git -C "$base/g" add "$f" &&
    git -C "$base/g" commit -q -m "note by Bench" && git -C "$base/g" push -q
  t1=$(now_ns)
  bygit+=("$(elapsed_ms "$t0" "$t1")")
done
m=$(median "${meta[@]}"); g=$(median "${bygit[@]}")
printf '   meta append: %s ms   git pull+add+commit+push: %s ms   git / meta: %s\n' "$m" "$g" "$(ratio "$g" "$m")"

echo "2. throughput: appends reaching the remote per second"
base=$(shared 1000 10 100)
for writers in 1 4 16; do
  per=$((80 / writers)); [ "$per" -gt 40 ] && per=40
  for w in $(seq "$writers"); do join "$base" "w$w"; done
  before=$(git -C "$base/remote.git" rev-list --count main)
  t0=$(now_ns)
  for w in $(seq "$writers"); do
    (for i in $(seq "$per"); do "$out/meta" --dir "$base/w$w" append note "app$((w % 10)).example.com" -m "w$w" >/dev/null 2>>"$out/throughput.err"; done) &
  done
  wait
  t1=$(now_ns)
  after=$(git -C "$base/remote.git" rev-list --count main)
  secs=$(echo "scale=3; ($t1 - $t0) / 1000000000" | bc)
  pushed=$((after - before)); total=$((writers * per))
  printf '   %2d writers: %3d of %3d appends pushed at once in %6.2f s: %6.1f appends/s\n' "$writers" "$pushed" "$total" "$secs" "$(echo "scale=1; $pushed / $secs" | bc)"
  for w in $(seq "$writers"); do "$out/meta" --dir "$base/w$w" sync; done
done

echo "3. incremental sync of one new event (median of $rounds)"
declare -A syncs
for n in 1000 10000 100000; do
  base=$(shared "$n" $((n / 100)) 100)
  join "$base" a
  join "$base" b
  times=()
  for i in $(seq "$rounds"); do
    "$out/meta" --dir "$base/b" append note app1.example.com -m new >/dev/null
    t0=$(now_ns); "$out/meta" --dir "$base/a" sync; t1=$(now_ns)
    times+=("$(elapsed_ms "$t0" "$t1")")
  done
  syncs[$n]=$(median "${times[@]}")
  printf '   %6d events: %s ms\n' "$n" "${syncs[$n]}"
done
printf '   100k / 1k: %s\n' "$(ratio "${syncs[100000]}" "${syncs[1000]}")"
