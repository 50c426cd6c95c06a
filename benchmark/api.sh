#!/usr/bin/env bash
# API and dashboard response-time benchmark (issue 5): builds Burnrate and the benchmarks (Release), generates (or
# reuses) a ledger of 2,000 GPUs x 90 days, starts `burnrate serve --data DIR` on it, feeds a live fleet as events,
# times the API calls the dashboard's overview and workload page make (sequential and concurrent clients), then the
# dashboard's first load in headless Chromium. Prints Markdown tables (results: docs/performance.md).
#
# Usage: benchmark/api.sh [options]        e.g. benchmark/api.sh --requests 500 --browser-runs 30
#        benchmark/api.sh --help            lists the options (--data, --gpus, --days, --clients, ...)
# The first run generates the ledger (~10 min on an idle 2-core machine, 2.9 GB); later runs reuse it.
set -euo pipefail
cd "$(dirname "$0")/.."

for arg in "$@"; do
  if [[ "$arg" == "--help" || "$arg" == "-h" ]]; then
    dotnet build benchmark/Burnrate.Benchmarks/Burnrate.Benchmarks.csproj -c Release -nologo -v quiet >&2
    exec dotnet benchmark/Burnrate.Benchmarks/bin/Release/net10.0/Burnrate.Benchmarks.dll api --help
  fi
done

echo "==> building src/Burnrate and benchmark/Burnrate.Benchmarks (Release)" >&2
dotnet build src/Burnrate/Burnrate.csproj -c Release -nologo -v quiet >&2
dotnet build benchmark/Burnrate.Benchmarks/Burnrate.Benchmarks.csproj -c Release -nologo -v quiet >&2

exec dotnet benchmark/Burnrate.Benchmarks/bin/Release/net10.0/Burnrate.Benchmarks.dll api "$@"
