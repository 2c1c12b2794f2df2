#!/usr/bin/env bash
# Compares `meta append` with the git CLI doing the same work by hand
# (`git add <one new file> && git commit -q`) on the same repositories, in
# one run, rounds interleaved so both see the same machine. Also times a
# whole `meta head` process on an app with 10,000 events, with its peak
# memory. Prints medians and ratios; machines here are noisy, so trust the
# ratios more than the times.
#
#   bench/append.sh [ROUNDS]      (default 15; logs are kept in bench/out)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-15}
out=bench/out
. bench/lib.sh
build

# git_commit REPO NAME: add one new record-sized file and commit it, as a
# person would. The files go outside projects/ so they do not disturb the log.
git_commit() {
  mkdir -p "$1/by-hand"
  head -c 180 /dev/urandom >"$1/by-hand/$2"
  git -C "$1" add "by-hand/$2" && git -C "$1" commit -q -m "note by Bench"
}

printf '%-8s %-24s %10s %12s\n' events "command" "median ms" "vs meta"
for total in 10000 100000; do
  repo="$out/log-$total"
  fixture "$repo" $((total / 100)) 100
  "$out/meta" --dir "$repo" append note app1.example.com -m warm-up >/dev/null
  meta=() gitsplit=() gitplain=()
  for i in $(seq "$rounds"); do
    t0=$(now_ns); "$out/meta" --dir "$repo" append note app1.example.com -m bench >/dev/null; t1=$(now_ns)
    meta+=("$(elapsed_ms "$t0" "$t1")")
    t0=$(now_ns); git_commit "$repo" "split-$total-$i-$RANDOM"; t1=$(now_ns)
    gitsplit+=("$(elapsed_ms "$t0" "$t1")")
  done
  # The same git work on a plain (unsplit) index, as in a repository meta
  # never touched; meta splits it again on its next append.
  git -C "$repo" update-index --no-split-index
  for i in $(seq "$rounds"); do
    t0=$(now_ns); git_commit "$repo" "plain-$total-$i-$RANDOM"; t1=$(now_ns)
    gitplain+=("$(elapsed_ms "$t0" "$t1")")
  done
  m=$(median "${meta[@]}"); gs=$(median "${gitsplit[@]}"); gp=$(median "${gitplain[@]}")
  printf '%-8s %-24s %10s %12s\n' "$total" "meta append" "$m" "1.00"
  printf '%-8s %-24s %10s %12s\n' "$total" "git add+commit (split)" "$gs" "$(ratio "$gs" "$m")"
  printf '%-8s %-24s %10s %12s\n' "$total" "git add+commit (plain)" "$gp" "$(ratio "$gp" "$m")"
  if [ -n "$(git -C "$repo" status --porcelain)" ]; then echo "bench: $repo is not clean" >&2; exit 1; fi
done

repo="$out/log-1x10000"
fixture "$repo" 1 10000
"$out/meta" --dir "$repo" head app0.example.com >/dev/null
times=() mems=()
for i in $(seq "$rounds"); do
  t0=$(now_ns); /usr/bin/time -o "$out/time.txt" -f %M "$out/meta" --dir "$repo" head app0.example.com >/dev/null; t1=$(now_ns)
  times+=("$(elapsed_ms "$t0" "$t1")"); mems+=("$(cat "$out/time.txt")")
done
printf '%-8s %-24s %10s   peak %s KB\n' 10000 "meta head (one app)" "$(median "${times[@]}")" "$(median "${mems[@]}")"
