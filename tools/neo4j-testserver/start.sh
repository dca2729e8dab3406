#!/usr/bin/env bash
# Starts the Neo4j test server in the background: start.sh PORT DATADIR.
#
# Builds target/neo4j-testserver.jar first if it is missing (offline when
# Maven's cache already has everything, online otherwise), writes
# DATADIR/neo4j-testserver.pid and DATADIR/neo4j-testserver.log, and waits
# up to NEO4J_START_TIMEOUT seconds (default 120) for the server's READY
# line. Exits non-zero with the log's tail if the server did not come up.
# JAVA_OPTS overrides the JVM options (default: 1 GiB heap, serial GC, and
# only the quick JIT, which starts and runs a one-off test suite faster on
# 2 cores; drop -XX:TieredStopAtLevel=1 for long benchmark runs).
set -euo pipefail

if [[ $# -ne 2 ]]; then
	echo "usage: $0 PORT DATADIR" >&2
	exit 2
fi
port=$1
data=$2
here=$(cd "$(dirname "$0")" && pwd)
jar=$here/target/neo4j-testserver.jar
timeout=${NEO4J_START_TIMEOUT:-120}
java_opts=${JAVA_OPTS:--Xms256m -Xmx1g -XX:+UseSerialGC -XX:TieredStopAtLevel=1}

mkdir -p "$data"
data=$(cd "$data" && pwd)
pidfile=$data/neo4j-testserver.pid
log=$data/neo4j-testserver.log

if [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
	echo "neo4j test server already running (pid $(cat "$pidfile")), bolt://127.0.0.1:$port"
	exit 0
fi

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
if port_open; then
	echo "port $port is already in use by something else; choose another PORT" >&2
	exit 1
fi

if [[ ! -f $jar || ! -d $here/target/lib ]]; then
	echo "building $jar"
	if ! (cd "$here" && mvn -q -B -o package >"$data/build.log" 2>&1); then
		(cd "$here" && mvn -q -B package >"$data/build.log" 2>&1) || {
			tail -n 40 "$data/build.log" >&2
			exit 1
		}
	fi
fi

# shellcheck disable=SC2086 # java_opts is a list of options
nohup java $java_opts -jar "$jar" --port "$port" --data "$data/db" >"$log" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$pidfile"

# Only the READY line counts: while starting, the engine binds the port
# briefly before Bolt really serves it, so an open port proves nothing yet.
for ((i = 0; i < timeout * 2; i++)); do
	if grep -q '^NEO4J READY' "$log" 2>/dev/null && port_open; then
		echo "neo4j test server ready (pid $pid): bolt://127.0.0.1:$port"
		exit 0
	fi
	if ! kill -0 "$pid" 2>/dev/null; then
		echo "neo4j test server exited during start; log tail:" >&2
		tail -n 40 "$log" >&2
		rm -f "$pidfile"
		exit 1
	fi
	sleep 0.5
done
echo "neo4j test server not ready after ${timeout}s; log tail:" >&2
tail -n 40 "$log" >&2
kill "$pid" 2>/dev/null || true
rm -f "$pidfile"
exit 1
