#!/usr/bin/env bash
# Times the meta exec wrapper as whole processes around an abra command that
# does nothing (a no-op stand-in abra), with the sync cooldown still fresh so
# no fetch happens: the overhead every aliased abra command pays. Also times
# a recorded deploy (commit and push to a bare remote; --settle-timeout=-1s:
# no Swarm here to follow, so it is recorded pending at once) against the
# git CLI committing and pushing one file to the same remote. What following
# Swarm adds is bench/exec-swarm.sh's. Rounds are
# interleaved; trust the ratios more than the times.
#
#   bench/exec.sh [ROUNDS]      (default 21)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-21}
out=bench/out
. bench/lib.sh
build

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin" "$work/abra/servers/swarm1"
printf '#!/bin/sh\nexit 0\n' >"$work/bin/abra"
chmod 755 "$work/bin/abra"
printf 'TYPE=custom-html:1.0.0+1\n' >"$work/abra/servers/swarm1/app.example.org.env"
export ABRA_DIR="$work/abra" PATH="$work/bin:$PATH" HOME="$work"
git init -q --bare -b main "$work/remote.git"
"$out/meta" init "$work/log" --project coop --remote "$work/remote.git" >/dev/null
meta="$out/meta --dir $work/log"
$meta append deploy app.example.org --version 1.0.0+1 --env swarm1 >/dev/null
git clone -q "$work/remote.git" "$work/plain"

declare -A ms
time_cmd() {
  local name=$1; shift
  local t0 t1
  t0=$(now_ns); "$@" >/dev/null 2>&1; t1=$(now_ns)
  ms[$name]+="$(elapsed_ms "$t0" "$t1") "
}
gitpush() {
  date +%s%N >"$work/plain/f-$1" && git -C "$work/plain" add "f-$1" && git -C "$work/plain" commit -qm "$1" &&
    git -C "$work/plain" pull -q --rebase && git -C "$work/plain" push -q origin HEAD:main
}
$meta head app.example.org >/dev/null # a fetch now: the cooldown is fresh
for i in $(seq "$rounds"); do
  time_cmd "abra app ps (alone)" abra app ps app.example.org
  time_cmd "meta exec -- abra app ps" $meta exec -- abra app ps app.example.org
  time_cmd "meta exec -- abra app deploy" $meta exec --settle-timeout=-1s -- abra app deploy app.example.org
  time_cmd "git add+commit+push" gitpush "$i"
done

alone=$(median ${ms["abra app ps (alone)"]})
wrapped=$(median ${ms["meta exec -- abra app ps"]})
printf '%-32s %10s\n' command "median ms"
for name in "abra app ps (alone)" "meta exec -- abra app ps" "meta exec -- abra app deploy" "git add+commit+push"; do
  printf '%-32s %10s\n' "$name" "$(median ${ms[$name]})"
done
printf 'wrapper overhead (no-op command, cooldown fresh): %s ms\n' "$(echo "$wrapped - $alone" | bc)"
printf 'recorded deploy vs git add+commit+push: %sx\n' "$(ratio "$(median ${ms["meta exec -- abra app deploy"]})" "$(median ${ms["git add+commit+push"]})")"
