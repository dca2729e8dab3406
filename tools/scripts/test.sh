#!/usr/bin/env bash
# `make test`: sets up what the tests need, runs every module's tests, and
# stops what it started.
#
#   - redis-server (Debian's package): the Redis store tests start their own
#     servers from it;
#   - the Neo4j test server (tools/neo4j-testserver, the real engine from
#     Maven on Java 17), started once here and shared through NEO4J_URI;
#   - nats-server is built from its Go module by the tests that need one.
#
# A backend that cannot be installed or does not start fails the run: no test
# is skipped silently. Set NEO4J_URI to use a Neo4j server of your own.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

modules=(events libs services/dedup services/extractor services/graph-writer services/ingest-api
	services/projection services/query services/vector-indexer tools)
test_flags=${TEST_FLAGS:--race -count=1 -timeout 30m}

apt_install() {
	if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
		echo "missing: $* — install it (Debian/Ubuntu: sudo apt-get install -y $*) and run make test again" >&2
		exit 1
	fi
	echo "== installing $* from Debian's packages"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq "$@" >/dev/null
}

command -v redis-server >/dev/null || apt_install redis-server
command -v java >/dev/null || apt_install openjdk-17-jre-headless
command -v mvn >/dev/null || apt_install maven

if [[ -z ${NEO4J_URI:-} ]]; then
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 17687)
	# tmpfs when there is one: Neo4j fsyncs every commit, which dominates on disk.
	data=$root/.tmp/neo4j-test
	[[ -d /dev/shm && -w /dev/shm ]] && data=$(mktemp -d /dev/shm/kgraph-neo4j-XXXXXX)
	rm -rf "$data"
	echo "== starting the Neo4j test server on 127.0.0.1:$port"
	tools/neo4j-testserver/start.sh "$port" "$data"
	trap 'tools/neo4j-testserver/stop.sh "$data" >/dev/null; rm -rf "$data"' EXIT
	export NEO4J_URI=bolt://127.0.0.1:$port
fi
echo "== NEO4J_URI=$NEO4J_URI, $(redis-server --version | cut -d' ' -f1-3)"
if [[ -z ${QDRANT_URL:-} ]]; then
	echo "== QDRANT_URL is not set: the Qdrant contract suite is skipped (Qdrant cannot be built here); its request building is still tested"
fi

status=0
for m in "${modules[@]}"; do
	echo "== go test $m"
	# shellcheck disable=SC2086 # test_flags is a list of flags
	(cd "$m" && GOWORK=off go test $test_flags ./...) || status=1
done
exit $status
