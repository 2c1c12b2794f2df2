#!/usr/bin/env bash
# meta verify of a signed log, measured in one run: a log of N events
# (default 100,000) whose every commit is signed (bench/signlog: ed25519,
# git's SSH format, signatures required from the first commit), checked by
#  1. `meta verify`: every commit's signature against the operators listed
#     at its parent, and every rule of the log, reading every record;
#  2. the git CLI verifying signatures: `git log --format=%G?` over the last
#     SAMPLE commits (git runs ssh-keygen once per commit), scaled to N.
# Prints medians and the per-commit ratio; machines here are noisy, so
# trust the ratio.
#
#   bench/verify.sh [EVENTS] [ROUNDS] [SAMPLE]   (defaults 100000 3 2000)
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-100000}
rounds=${2:-3}
sample=${3:-2000}
out="$PWD/bench/out"
. bench/lib.sh
build
go build -o "$out/meta-seal" ./cmd/meta-seal
go build -o "$out/signlog" ./bench/signlog
export PATH="$out:$PATH"
key="$out/signlog-key"
[ -f "$key" ] || ssh-keygen -q -t ed25519 -N '' -C bench -f "$key"
log="$out/signed-$events"
if [ ! -f "$log/meta.yaml" ]; then
  rm -rf "$log"
  t0=$(now_ns); "$out/signlog" "$log" "$events" "$key"; t1=$(now_ns)
  echo "built $log in $(elapsed_ms "$t0" "$t1") ms"
fi
commits=$(git -C "$log" rev-list --count HEAD)
meta_ms=() git_ms=()
for _ in $(seq "$rounds"); do
  t0=$(now_ns); (cd "$log" && meta verify 2>"$out/verify.err"); t1=$(now_ns)
  meta_ms+=("$(elapsed_ms "$t0" "$t1")")
  t0=$(now_ns); git -C "$log" log --format=%G? -n "$sample" >"$out/verify-git.out"; t1=$(now_ns)
  git_ms+=("$(elapsed_ms "$t0" "$t1")")
done
tail -1 "$out/verify.err"
if grep -qv '^G$' "$out/verify-git.out"; then echo "git did not verify every commit" >&2; exit 1; fi
m=$(median "${meta_ms[@]}")
g=$(median "${git_ms[@]}")
per_meta=$(echo "scale=4; $m / $commits" | bc)
per_git=$(echo "scale=4; $g / $sample" | bc)
echo "meta verify, $commits commits: $m ms median ($per_meta ms per commit)"
echo "git log --format=%G?, $sample commits: $g ms median ($per_git ms per commit; $(echo "scale=0; $per_git * $commits / 1" | bc) ms scaled to $commits)"
echo "meta / git per commit: $(ratio "$per_meta" "$per_git")x"
