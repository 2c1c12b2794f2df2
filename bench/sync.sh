#!/usr/bin/env bash
# Operator sync, measured in one run on logs served by a bare remote on disk:
#  1. `meta append` (fetch, commit, push) against the git CLI doing the same
#     by hand (git pull --ff-only, add one file, commit, push) on the same
#     remote, rounds interleaved, in a log of 10,000 events;
#  2. throughput: appends per second reaching the remote with 1, 4, 16 and
#     32 writers, each with a clone and a process of its own, and each
#     figure's ratio to 1 writer's; with META_OLD=PATH (another build of
#     meta, e.g. of an older commit) the same again with it, interleaved;
#  3. incremental sync of one new event into clones of logs with 1k, 10k
#     and 100k events: it should not grow with history; with META_OLD, the
#     old build syncs a clone of its own after each event too.
# Prints medians and ratios; machines here are noisy, so trust the ratios.
#
#   bench/sync.sh [ROUNDS [SECTIONS]]  (default 15 and 123; logs are kept in bench/out)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-15}
sections=${2:-123}
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

if [[ $sections == *1* ]]; then
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
fi

throughput() { # BINARY WRITERS: appends/s reaching the remote, printed
  local bin=$1 writers=$2 per w i
  per=$((128 / writers)); [ "$per" -gt 40 ] && per=40; [ "$per" -lt 4 ] && per=4
  for w in $(seq "$writers"); do join "$base" "w$w"; done
  before=$(git -C "$base/remote.git" rev-list --count main)
  t0=$(now_ns)
  for w in $(seq "$writers"); do
    (for i in $(seq "$per"); do "$bin" --dir "$base/w$w" append note "app$((w % 10)).example.com" -m "w$w" >/dev/null 2>>"$out/throughput.err"; done) &
  done
  wait
  t1=$(now_ns)
  after=$(git -C "$base/remote.git" rev-list --count main)
  secs=$(echo "scale=3; ($t1 - $t0) / 1000000000" | bc)
  pushed=$((after - before)); total=$((writers * per))
  rate=$(echo "scale=1; $pushed / $secs" | bc)
  for w in $(seq "$writers"); do "$bin" --dir "$base/w$w" sync 2>/dev/null; done
  echo "$pushed $total $secs $rate"
}

if [[ $sections == *2* ]]; then
echo "2. throughput: appends reaching the remote per second"
base=$(shared 1000 10 100)
bins=("$out/meta"); [ -n "${META_OLD:-}" ] && bins+=("$META_OLD")
declare -A one
for writers in 1 4 16 32; do
  for bin in "${bins[@]}"; do
    read -r pushed total secs rate < <(throughput "$bin" "$writers")
    [ "$writers" = 1 ] && one[$bin]=$rate
    printf '   %-20s %2d writers: %3d of %3d appends pushed at once in %6.2f s: %6.1f appends/s, %s x 1 writer\n' \
      "$(basename "$bin")" "$writers" "$pushed" "$total" "$secs" "$rate" "$(ratio "$rate" "${one[$bin]}")"
  done
done
fi

if [[ $sections == *3* ]]; then
echo "3. incremental sync of one new event (median of $rounds)"
# With META_OLD, a second clone synced by the old build after each new
# event, rounds interleaved, so both see the same remote and the same noise.
bins=("$out/meta"); [ -n "${META_OLD:-}" ] && bins+=("$META_OLD")
declare -A syncs
for n in 1000 10000 100000; do
  base=$(shared "$n" $((n / 100)) 100)
  join "$base" b
  for k in "${!bins[@]}"; do join "$base" "a$k"; done
  declare -A times=()
  for i in $(seq "$rounds"); do
    "$out/meta" --dir "$base/b" append note app1.example.com -m new >/dev/null
    for k in "${!bins[@]}"; do
      t0=$(now_ns); "${bins[$k]}" --dir "$base/a$k" sync; t1=$(now_ns)
      times[$k]+=" $(elapsed_ms "$t0" "$t1")"
    done
  done
  for k in "${!bins[@]}"; do
    # shellcheck disable=SC2086 # the times are words
    syncs[$k,$n]=$(median ${times[$k]})
    printf '   %-20s %6d events: %s ms\n' "$(basename "${bins[$k]}")" "$n" "${syncs[$k,$n]}"
  done
  unset times
done
for k in "${!bins[@]}"; do
  printf '   %-20s 100k / 1k: %s\n' "$(basename "${bins[$k]}")" "$(ratio "${syncs[$k,100000]}" "${syncs[$k,1000]}")"
done
fi
