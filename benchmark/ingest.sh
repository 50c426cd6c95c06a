#!/usr/bin/env bash
# End-to-end ingest benchmark: builds Burnrate and the load generator (Release), then runs the load generator, which
# starts `burnrate serve` and Prometheus (--web.enable-remote-write-receiver) one after the other on loopback, feeds
# each the same remote write load and prints a Markdown table (results: docs/performance.md).
#
# Usage: benchmark/ingest.sh [load generator options]     e.g. benchmark/ingest.sh --runs 3 --warmup 20s
#        benchmark/ingest.sh --help                         lists the options (--gpus, --duration, --connections, ...)
# Needs Debian's prometheus (apt-get install prometheus) unless --targets leaves it out.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v prometheus >/dev/null 2>&1 && [[ " $* " != *" --targets "* ]]; then
  echo "error: prometheus is not on PATH; install Debian's package (apt-get install prometheus) or pass --targets burnrate" >&2
  exit 1
fi

echo "==> building src/Burnrate and benchmark/Burnrate.LoadGen (Release)" >&2
dotnet build src/Burnrate/Burnrate.csproj -c Release -nologo -v quiet >&2
dotnet build benchmark/Burnrate.LoadGen/Burnrate.LoadGen.csproj -c Release -nologo -v quiet >&2

exec dotnet benchmark/Burnrate.LoadGen/bin/Release/net10.0/burnrate-loadgen.dll "$@"
