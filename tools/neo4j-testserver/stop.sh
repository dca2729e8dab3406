#!/usr/bin/env bash
# Stops the Neo4j test server that start.sh started: stop.sh DATADIR.
# Sends SIGTERM, so the database shuts down cleanly, and SIGKILL after 60 s.
set -euo pipefail

if [[ $# -ne 1 ]]; then
	echo "usage: $0 DATADIR" >&2
	exit 2
fi
pidfile=$1/neo4j-testserver.pid
if [[ ! -f $pidfile ]]; then
	echo "no $pidfile: neo4j test server not running"
	exit 0
fi
pid=$(cat "$pidfile")
if kill -TERM "$pid" 2>/dev/null; then
	for ((i = 0; i < 120; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.5
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "neo4j test server (pid $pid) still running after 60s; killing it" >&2
		kill -KILL "$pid" 2>/dev/null || true
	fi
fi
rm -f "$pidfile"
echo "neo4j test server stopped"
