#!/usr/bin/env bash
# Alert latency benchmark: builds Burnrate and the benchmark (Release), then times, over many trials, a job's launch
# posted to `burnrate serve` → its spend_rate alert arriving at a webhook, directly and through Debian's Alertmanager.
#
# Usage: benchmark/alert-latency.sh [options]      e.g. benchmark/alert-latency.sh --trials 500 --for 30s
#        benchmark/alert-latency.sh --help          lists the options
# Needs Debian's prometheus-alertmanager (apt-get install prometheus-alertmanager).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "==> building src/Burnrate and benchmark/Burnrate.AlertLatency (Release)" >&2
dotnet build src/Burnrate/Burnrate.csproj -c Release -nologo -v quiet >&2
dotnet build benchmark/Burnrate.AlertLatency/Burnrate.AlertLatency.csproj -c Release -nologo -v quiet >&2
exec dotnet benchmark/Burnrate.AlertLatency/bin/Release/net10.0/burnrate-alert-latency.dll "$@"
