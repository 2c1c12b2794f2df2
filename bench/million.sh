#!/usr/bin/env bash
# meta on a log of a million events (1,000 apps of 1,000 events, one commit
# per event, built once by bench/mkrepo), against the same log's smaller
# sibling (10,000 events) and the git CLI, in one run:
#  0. `meta checkpoint`, once: the derived state published on a bare remote
#     (the log's first walk of its own history, its signatures and its
#     folds: what a hub does once, then every 1,000 commits);
#  1. the first read of a plain `git clone` of that remote;
#  2. `meta head` of one app, warm, and its peak memory;
#  3. `meta ls --json` over the 1,000 apps, warm;
#  4. `meta append --offline` (write, check, commit) at 10k and at 1M events, rounds
#     interleaved, against `git add` + `git commit` of one file in the same
#     repository: "flat" means the 1M / 10k ratio stays near 1;
#  5. `meta verify` of the whole log, once: its time and peak memory.
# Peak memory (max RSS, from /usr/bin/time) is printed for every command.
#
#   bench/million.sh [ROUNDS] [LOG]   (default 11; LOG defaults to bench/out/log-1m;
#                                     VERIFY=0 leaves out the verify, many minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-11}
out="$PWD/bench/out"
log=${2:-$out/log-1m}
. bench/lib.sh
build
fixture "$log" 1000 1000
small="$out/log-10k"
fixture "$small" 10 1000
events=$(git -C "$log" rev-list --count HEAD)

# timed NAME CMD...: runs CMD, appends its wall time (ms) to the array
# NAME_ms and its peak memory (KB) to NAME_kb.
timed() {
  local name=$1; shift
  local t0 t1
  t0=$(now_ns); /usr/bin/time -o "$out/time.txt" -f %M "$@" >/dev/null; t1=$(now_ns)
  eval "${name}_ms+=(\"$(elapsed_ms "$t0" "$t1")\")"
  eval "${name}_kb+=(\"$(tail -1 "$out/time.txt")\")"
}
# report NAME LABEL [AGAINST]: the median time and peak memory of NAME.
report() {
  local ms kb vs=""
  eval "ms=\$(median \"\${${1}_ms[@]}\")"
  eval "kb=\$(median \"\${${1}_kb[@]}\")"
  if [ -n "${3:-}" ]; then vs="$(ratio "$ms" "$3")x"; fi
  kb=${kb%.*}
  printf '%-44s %10s ms %8s MB %8s\n' "$2" "$ms" "$((kb / 1024))" "$vs"
}
# git_commit REPO NAME: one new record-sized file added and committed by
# hand, outside projects/ so that it does not disturb the log.
git_commit() {
  mkdir -p "$1/by-hand"
  head -c 180 /dev/urandom >"$1/by-hand/$2"
  /usr/bin/time -o "$out/time.txt" -f %M sh -c 'git -C "$1" add "by-hand/$2" && git -C "$1" commit -q -m "note by Bench"' sh "$1" "$2"
}

echo "log: $log ($events commits)"
remote="$out/log-1m.git"
if [ ! -d "$remote" ]; then
  git clone -q --bare "$log" "$remote"
  git -C "$log" remote add origin "$remote"
  git -C "$log" fetch -q origin
  git -C "$log" branch -q -u origin/main
fi
timed checkpoint "$out/meta" --dir "$log" checkpoint
report checkpoint "meta checkpoint (once)"

clone="$out/log-1m-clone"
rm -rf "$clone" 2>/dev/null || { sleep 5; rm -rf "$clone"; }
git clone -q "$remote" "$clone"
timed first "$out/meta" --dir "$clone" --offline head app1.example.com
timed gitlog git -C "$clone" log --format=%H -- projects/bench/prod/app1.example.com
report first "first head after a plain git clone"
report gitlog "git log of that app's directory (peer)"
rm -rf "$clone" 2>/dev/null || { sleep 5; rm -rf "$clone"; }
git clone -q "$remote" "$clone"
timed firstls "$out/meta" --dir "$clone" --offline ls
report firstls "first ls (1,000 apps) after a plain git clone"
rm -rf "$clone" 2>/dev/null || { sleep 5; rm -rf "$clone"; }

"$out/meta" --dir "$log" --offline head app1.example.com >/dev/null
"$out/meta" --dir "$log" --offline ls --json >/dev/null
"$out/meta" --dir "$small" append note app1.example.com -m warm-up >/dev/null
"$out/meta" --dir "$log" --offline append note app1.example.com -m warm-up >/dev/null
for i in $(seq "$rounds"); do
  timed head "$out/meta" --dir "$log" --offline head app1.example.com
  timed ls "$out/meta" --dir "$log" --offline ls --json
  timed lstree git -C "$log" ls-tree -r HEAD projects
  timed small "$out/meta" --dir "$small" append note app1.example.com -m bench
  timed big "$out/meta" --dir "$log" --offline append note app1.example.com -m bench
  t0=$(now_ns); git_commit "$log" "m-$i-$RANDOM"; t1=$(now_ns)
  gitadd_ms+=("$(elapsed_ms "$t0" "$t1")"); gitadd_kb+=("$(tail -1 "$out/time.txt")")
done
report head "meta head, warm (1M)"
report lstree "git ls-tree -r HEAD projects (peer)"
report ls "meta ls --json, 1,000 apps, warm (1M)"
small_med=$(median "${small_ms[@]}")
report small "meta append --offline (10k)"
report big "meta append --offline (1M)" "$small_med"
big_med=$(median "${big_ms[@]}")
report gitadd "git add + commit (1M)" "$big_med"
if [ "${VERIFY:-1}" = 1 ]; then
  timed verify "$out/meta" --dir "$log" verify
  report verify "meta verify (whole log)"
fi
