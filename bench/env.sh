#!/usr/bin/env bash
# Times `meta env get` and `meta env export` of a 100-key env file as whole
# processes, with peak memory, against the sops CLI decrypting the same file
# in the same run; and `meta head` start-up with and without sops linked
# into meta (the -tags linksops build), which is why encryption lives in the
# meta-seal helper. Rounds are interleaved so every command sees the same
# machine; trust the ratios more than the times.
#
#   bench/env.sh [ROUNDS]      (default 21; needs sops and age-keygen on PATH)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-21}
out=bench/out
. bench/lib.sh
build
go build -o "$out/meta-seal" ./cmd/meta-seal
go build -tags linksops -o "$out/meta-linked" ./cmd/meta
export SOPS_DISABLE_VERSION_CHECK=1

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
age-keygen -o "$work/key.txt" 2>/dev/null
export SOPS_AGE_KEY_FILE="$work/key.txt"
"$out/meta" init "$work/log" --project coop --env prod >/dev/null
cd "$work/log"
"$OLDPWD/$out/meta" operator add bench --age "$(age-keygen -y "$work/key.txt")" >/dev/null
for i in $(seq 100); do
  echo "# setting $i"
  echo "KEY_$i=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
done >"$work/plain.env"
"$OLDPWD/$out/meta" env import app.example.org "$work/plain.env" >/dev/null
"$OLDPWD/$out/meta" append deploy app.example.org --version 1.0.0+1 >/dev/null
cd "$OLDPWD"
meta="$out/meta --dir $work/log"
linked="$out/meta-linked --dir $work/log"
file="$work/log/projects/coop/prod/app.example.org/app.example.org.env"

# time_cmd NAME CMD...: one timed run; appends ms and peak KB to NAME's lists.
declare -A ms kb
time_cmd() {
  local name=$1; shift
  local t0 t1
  t0=$(now_ns); /usr/bin/time -o "$work/time.txt" -f %M "$@" >/dev/null; t1=$(now_ns)
  ms[$name]+="$(elapsed_ms "$t0" "$t1") "; kb[$name]+="$(cat "$work/time.txt") "
}
for i in $(seq "$rounds"); do
  time_cmd "meta env get" $meta env get app.example.org
  time_cmd "meta env export" $meta env export app.example.org -o "$work/out.env"
  time_cmd "sops decrypt" sops decrypt "$file"
  time_cmd "meta head" $meta --offline head app.example.org
  time_cmd "meta head, sops linked" $linked --offline head app.example.org
done
cmp -s <(sops decrypt "$file") "$work/out.env" || { echo "bench: export differs from sops decrypt" >&2; exit 1; }

base=$(median ${ms["sops decrypt"]})
printf '%-24s %10s %10s %10s\n' command "median ms" "vs sops" "peak KB"
for name in "meta env get" "meta env export" "sops decrypt"; do
  m=$(median ${ms[$name]})
  printf '%-24s %10s %10s %10s\n' "$name" "$m" "$(ratio "$m" "$base")" "$(median ${kb[$name]})"
done
lean=$(median ${ms["meta head"]}); heavy=$(median ${ms["meta head, sops linked"]})
printf '\n%-24s %10s %10s\n' command "median ms" "vs lean"
printf '%-24s %10s %10s\n' "meta head" "$lean" "1.00"
printf '%-24s %10s %10s\n' "meta head, sops linked" "$heavy" "$(ratio "$heavy" "$lean")"
printf 'start-up cost of linking sops: %s ms\n' "$(echo "$heavy - $lean" | bc)"
ls -l "$out/meta" "$out/meta-linked" "$out/meta-seal" | awk '{printf "%s %d MB\n", $9, $5/1048576}'
