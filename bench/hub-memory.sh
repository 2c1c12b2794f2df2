#!/usr/bin/env bash
# The hub's memory: resident size of a `meta serve` process idle on a small
# log, and after it has published a 100,000-event log to its embedded NATS
# (and its peak on the way).
#
#   bench/hub-memory.sh           (logs are kept in bench/out)
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/out
. bench/lib.sh
build

# serve_rss LOG: start a hub on LOG, wait until it has published, print its
# resident and peak memory, stop it.
serve_rss() {
  local log=$1 data; data=$(mktemp -d)
  "$out/meta" --dir "$log" serve --data "$data" --nats-listen 127.0.0.1:0 --listen 127.0.0.1:0 --poll 1h 2>"$data/log" &
  local pid=$!
  for _ in $(seq 600); do
    grep -q "published\|serving" "$data/log" 2>/dev/null && { grep -q "published" "$data/log" || [ "$2" = idle ]; } && break
    sleep 0.5
  done
  sleep 2
  printf '%s: resident %s, peak %s\n' "$3" "$(awk '/VmRSS/ {print $2 " " $3}' /proc/$pid/status)" "$(awk '/VmHWM/ {print $2 " " $3}' /proc/$pid/status)"
  kill -TERM "$pid"; wait "$pid" || true
  rm -rf "$data"
}

small="$out/hub-idle"
rm -rf "$small"; "$out/meta" init "$small" --project bench --env prod --operator Bench >/dev/null
serve_rss "$small" idle "hub idle on an empty log"
fixture "$out/log-100000" 1000 100
serve_rss "$out/log-100000" busy "hub after publishing 100k events"
