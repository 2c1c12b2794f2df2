#!/usr/bin/env bash
# Times, on a real Docker Engine in Swarm mode, how long after Swarm's
# rollback_completed (as the benchmark sees it, polling the Engine every
# 50 ms) the hub's observation of it is committed and reaches a NATS
# follower: ROLLBACKS upgrades that Swarm rolls back (failure_action:
# rollback, order: start-first, a task that exits after 2 s), four at a
# time, with the hub's default --observe-interval and --observe-window.
# Prints p50 and p99.
#
#   META_TEST_DOCKER_HOST=unix:///tmp/dockerd/docker.sock bench/observe.sh [ROLLBACKS]   (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
: "${META_TEST_DOCKER_HOST:?set META_TEST_DOCKER_HOST to a Docker Engine in Swarm mode}"
META_BENCH_ROLLBACKS=${1:-20} go test -count=1 -timeout 30m ./hub -run '^TestRollbackLatency$' -v |
  grep -E 'RESULT|rollback_completed to NATS|FAIL|^ok' | sed 's/^ *//'
