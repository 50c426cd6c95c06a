#!/usr/bin/env bash
# Alert latency benchmark: builds Burnrate and the benchmark (Release), then times, over many trials, a job's launch
# posted to `burnrate serve` → its spend_rate alert arriving at a webhook, directly and through Debian's Alertmanager.
#
# Usage: benchmark/alert-latency.sh [options]      e.g. benchmark/alert-latency.sh --trials 500 --for 30s
#        benchmark/alert-latency.sh --ruler [options]   e.g. benchmark/alert-latency.sh --ruler --trials 30
#        benchmark/alert-latency.sh --help          lists the options
# Needs Debian's prometheus-alertmanager (apt-get install prometheus-alertmanager); --ruler needs clickhouse-server:
# it starts a throw-away one with deploy/clickhouse/local-cluster.sh (HTTP port CH_HTTP_PORT, default 38123), runs two
# `serve --role ingest` and a `serve --role ruler` on it beside a single `serve`, and stops the server afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "==> building src/Burnrate and benchmark/Burnrate.AlertLatency (Release)" >&2
dotnet build src/Burnrate/Burnrate.csproj -c Release -nologo -v quiet >&2
dotnet build benchmark/Burnrate.AlertLatency/Burnrate.AlertLatency.csproj -c Release -nologo -v quiet >&2
bench=(dotnet benchmark/Burnrate.AlertLatency/bin/Release/net10.0/burnrate-alert-latency.dll)
if [ "${1:-}" != "--ruler" ]; then
  exec "${bench[@]}" "$@"
fi
shift
export CH_HTTP_PORT="${CH_HTTP_PORT:-38123}" CH_TCP_PORT="${CH_TCP_PORT:-39000}" CH_INTERSERVER_PORT="${CH_INTERSERVER_PORT:-39100}"
parent="$(mktemp -d /tmp/burnrate-ruler-latency-XXXXXX)"
servers="$parent/clickhouse"   # local-cluster.sh makes it (and refuses a directory it did not make)
trap 'deploy/clickhouse/local-cluster.sh stop "$servers" >&2 || true; rm -rf "$parent"' EXIT
deploy/clickhouse/local-cluster.sh start single "$servers" > /dev/null
"${bench[@]}" --clickhouse "http://127.0.0.1:$CH_HTTP_PORT" "$@"
