#!/usr/bin/env bash
# Cold reads, in one run: the first read of a clone made with a plain
# `git clone`, with the derived state the remote publishes (`meta
# checkpoint`, which the hub runs every 1,000 commits) and without it
# (every commit walked, every record folded), and the same read warm, on
#  - one app of 10,000 events: `meta head`, `meta head --json`;
#  - 1,000 apps of 100 events: `meta ls`, `meta ls --json`;
# against the git CLI listing the same files (`git ls-tree -r`). A cold
# read is a clone whose .git/meta (what meta derives and keeps) is
# removed, exactly what `git clone` leaves; reads run --offline, so no
# fetch is timed.
#
#   bench/cold.sh [ROUNDS]   (default 7; without the derived state 3)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-7}
out="$PWD/bench/out/cold"
. bench/lib.sh
build

# run NAME CLONE CMD...: times CMD (ms) into NAME_ms, cold: CLONE's
# .git/meta removed first.
cold() {
  local name=$1 clone=$2; shift 2
  rm -rf "$clone/.git/meta"
  local t0 t1; t0=$(now_ns); "$@" >/dev/null; t1=$(now_ns)
  eval "${name}_ms+=(\"$(elapsed_ms "$t0" "$t1")\")"
}
warm() {
  local name=$1; shift
  local t0 t1; t0=$(now_ns); "$@" >/dev/null; t1=$(now_ns)
  eval "${name}_ms+=(\"$(elapsed_ms "$t0" "$t1")\")"
}
show() {
  local ms vs=""
  eval "ms=\$(median \"\${${1}_ms[@]}\")"
  [ -n "${3:-}" ] && vs="$(ratio "$ms" "$3")x"
  printf '%-58s %10s ms %8s\n' "$2" "$ms" "$vs"
}

# prepare NAME APPS PER_APP: a bare remote of a log, a clone that published
# its derived state there, and two plain clones: one made after (it has the
# derived state) and one without it.
prepare() {
  local base="$out/$1"
  fixture "$out/log-$1" "$2" "$3"
  if [ ! -d "$base/with" ]; then
    rm -rf "$base"; mkdir -p "$base"
    git clone -q --bare "$out/log-$1" "$base/remote.git"
    git clone -q "$base/remote.git" "$base/without"
    git clone -q "$base/remote.git" "$base/pub"
    "$out/meta" --dir "$base/pub" checkpoint >/dev/null 2>&1
    git clone -q "$base/remote.git" "$base/with"
  fi
}
prepare 10k 1 10000
prepare 100k 1000 100
a="$out/10k" l="$out/100k" app=app0.example.com
m="$out/meta"

for i in $(seq "$rounds"); do
  cold head_with "$a/with" "$m" --dir "$a/with" --offline head "$app"
  warm head_warm "$m" --dir "$a/with" --offline head "$app"
  cold headj_with "$a/with" "$m" --dir "$a/with" --offline head --json "$app"
  warm headj_warm "$m" --dir "$a/with" --offline head --json "$app"
  warm head_git git -C "$a/with" ls-tree -r HEAD "projects/bench/prod/$app"
  cold ls_with "$l/with" "$m" --dir "$l/with" --offline ls
  warm ls_warm "$m" --dir "$l/with" --offline ls
  cold lsj_with "$l/with" "$m" --dir "$l/with" --offline ls --json
  warm lsj_warm "$m" --dir "$l/with" --offline ls --json
  warm ls_git git -C "$l/with" ls-tree -r HEAD projects
done
for i in $(seq 3); do
  cold head_without "$a/without" "$m" --dir "$a/without" --offline head "$app"
  cold ls_without "$l/without" "$m" --dir "$l/without" --offline ls
done
cold lsj_without "$l/without" "$m" --dir "$l/without" --offline ls --json

hg=$(median "${head_git_ms[@]}") lg=$(median "${ls_git_ms[@]}")
echo "one app of 10,000 events (against git ls-tree -r of its directory, $hg ms):"
show head_without "  first head, plain clone, no derived state" "$hg"
show head_with "  first head, plain clone with the derived state" "$hg"
show head_warm "  head, warm" "$hg"
show headj_with "  first head --json, plain clone with the derived state" "$hg"
show headj_warm "  head --json, warm" "$hg"
echo "1,000 apps, 100,000 events (against git ls-tree -r HEAD projects, $lg ms):"
show ls_without "  first ls, plain clone, no derived state" "$lg"
show ls_with "  first ls, plain clone with the derived state" "$lg"
show ls_warm "  ls, warm" "$lg"
show lsj_without "  first ls --json, plain clone, no derived state (once)" "$lg"
show lsj_with "  first ls --json, plain clone with the derived state" "$lg"
show lsj_warm "  ls --json, warm" "$lg"
