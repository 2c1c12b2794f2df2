#!/usr/bin/env bash
# What `meta exec` adds to a deploy beyond Swarm's own convergence, on a
# real Swarm ($META_TEST_DOCKER_HOST, as the tests use). Each round
# upgrades one stack twice, interleaved: once the way an operator checks
# by hand (a stand-in abra runs `docker stack deploy`, then the docker CLI
# is asked until Swarm says the app service's update completed: the peer),
# once through `meta exec`, which follows the update itself, waits for the
# tasks to catch up, and then commits and pushes the event. The difference
# of the medians is what meta adds; both include Swarm's own convergence.
#
#   META_TEST_DOCKER_HOST=unix:///path/docker.sock bench/exec-swarm.sh [ROUNDS]   (default 11)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-11}
out=bench/out
. bench/lib.sh
: "${META_TEST_DOCKER_HOST:?set it to the DOCKER_HOST of a swarm manager}"
export DOCKER_HOST=$META_TEST_DOCKER_HOST DOCKER_CLI_HINTS=false
build

work=$(mktemp -d)
stack=bench_exec_$$
trap 'docker stack rm "$stack" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
# The test image: the swarmtest program, FROM scratch.
mkdir -p "$work/image"
CGO_ENABLED=0 go build -o "$work/image/app" ./swarm/swarmtest/testdata/app
printf 'FROM scratch\nCOPY app /app\nENTRYPOINT ["/app"]\n' >"$work/image/Dockerfile"
image=meta-bench-app:latest
docker build -q -t "$image" "$work/image" >/dev/null

mkdir -p "$work/bin" "$work/abra/servers/swarm1"
cat >"$work/bin/abra" <<'ABRA'
#!/bin/sh
set -e
version=$4
f=$(ls "$ABRA_DIR"/servers/*/"$3".env)
sed -i "s/^TYPE=\([^:]*\).*/TYPE=\1:$version/" "$f"
stack=$(sed -n 's/^STACK_NAME=//p' "$f")
cat >"$WORK/compose.yml" <<YML
version: "3.8"
services:
  app:
    image: $IMAGE
    environment: {RELEASE: "$version"}
    deploy:
      labels: ["coop-cloud.$stack.version=$version", "coop-cloud.$stack.recipe=bench", "coop-cloud.$stack.chaos=false"]
      update_config: {failure_action: rollback, order: start-first, monitor: 1s}
YML
docker stack deploy --resolve-image never -c "$WORK/compose.yml" "$stack" >/dev/null 2>&1
ABRA
chmod 755 "$work/bin/abra"
printf 'TYPE=bench:0.0.0\nSTACK_NAME=%s\n' "$stack" >"$work/abra/servers/swarm1/app.example.org.env"
export ABRA_DIR="$work/abra" HOME="$work" WORK="$work" IMAGE="$image"
git init -q --bare -b main "$work/remote.git"
"$out/meta" init "$work/log" --project coop --env swarm1 --remote "$work/remote.git" >/dev/null
meta="$out/meta --dir $work/log"
"$work/bin/abra" app deploy app.example.org 0.0.0
"$work/bin/abra" app upgrade app.example.org 0.1.0

# settled: Swarm says the app service's update completed, as an operator
# would check with the docker CLI (every upgrade here replaces the task,
# so Swarm always runs an update).
settled() {
  [ "$(docker service inspect --format '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}' "${stack}_app")" = completed ]
}
by_hand() {
  "$work/bin/abra" app upgrade app.example.org "$1"
  until settled; do sleep 0.1; done
}
until settled; do sleep 0.2; done

declare -A ms
time_cmd() {
  local name=$1; shift
  local t0 t1
  t0=$(now_ns); "$@" >/dev/null 2>&1; t1=$(now_ns)
  ms[$name]+="$(elapsed_ms "$t0" "$t1") "
}
for i in $(seq "$rounds"); do
  time_cmd "abra + docker CLI until settled" by_hand "1.$i.0"
  time_cmd "meta exec -- abra, following Swarm" $meta exec --abra "$work/bin/abra" -- abra app upgrade app.example.org "2.$i.0"
done
$meta head app.example.org | grep -E '^(state|version):'

hand=$(median ${ms["abra + docker CLI until settled"]})
exec_=$(median ${ms["meta exec -- abra, following Swarm"]})
printf '%-40s %10s\n' command "median ms"
printf '%-40s %10s\n' "abra + docker CLI until settled" "$hand" "meta exec -- abra, following Swarm" "$exec_"
printf 'meta exec adds %s ms beyond Swarm convergence (%sx)\n' "$(echo "$exec_ - $hand" | bc)" "$(ratio "$exec_" "$hand")"
