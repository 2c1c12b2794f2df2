#!/usr/bin/env bash
# Follower latency while a NATS cluster loses a server: two hubs of one log
# against three real nats-server processes on loopback (the stream and
# buckets on three replicas), a follower, a webhook; 60 events appended
# 100 ms apart while the server leading the stream is stopped at the 20th
# and started again at the 40th. Prints the follower's latency (append to
# receipt) p50 and p99, overall and while the server is down, for SIGKILL
# (a lost machine) and SIGTERM (a planned restart), RUNS runs each.
# It is TestClusterTwoHubsNodeKill (hub/cluster_test.go), which also
# checks that every event reaches the follower and the webhook once each.
#
#   bench/cluster.sh            RUNS=5 bench/cluster.sh
# Needs nats-server (go install github.com/nats-io/nats-server/v2@v2.15.2).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:$(go env GOPATH)/bin GOFLAGS=${GOFLAGS:--buildvcs=false}
command -v nats-server >/dev/null || { echo "nats-server not found: go install github.com/nats-io/nats-server/v2@v2.15.2" >&2; exit 1; }
runs=${RUNS:-3}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
go test -c -o "$out/hub.test" ./hub
for sig in KILL TERM; do
  for i in $(seq "$runs"); do
    (cd hub && META_CLUSTER_SIGNAL=$sig META_CLUSTER_BENCH_OUT="$out/line" \
      "$out/hub.test" -test.run "^TestClusterTwoHubsNodeKill\$" -test.count 1) >"$out/log" 2>&1 ||
      { cat "$out/log" >&2; exit 1; }
    cat "$out/line"
  done
done
