#!/usr/bin/env bash
# ClickHouse store benchmark (issue 8): starts throw-away ClickHouse servers on loopback with
# deploy/clickhouse/local-cluster.sh (one server, then two shards), and for each runs
#   - the writer: WriteAsync a minute of 2,000 GPU rows at a time (what `serve` does), the same minutes in one batch,
#     and a plain RowBinary insert of the same rows without rollups (the baseline);
#   - `report --by team` over 90 days x 2,000 GPUs on ClickHouse and on DuckDB side by side: the ledger is generated
#     once into a DuckDB file (the API benchmark's generator; every day but the last by the hour), copied row by row
#     into ClickHouse and its rollups built there, so both stores hold the same rows.
# Prints Markdown tables (results: docs/performance.md). Stops only the servers it started, by their recorded pids.
#
# Usage: benchmark/clickhouse.sh [--gpus N] [--days N] [--write-minutes N] [--runs N]
#   BURNRATE_BENCH_DIR   where the DuckDB ledger and the servers' data go (default /tmp/burnrate-bench)
#   CH_HTTP_PORT etc.    port bases for the servers (default 28123 / 29000 / 29100)
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${BURNRATE_BENCH_DIR:-/tmp/burnrate-bench}"
mkdir -p "$dir"
export CH_HTTP_PORT="${CH_HTTP_PORT:-28123}" CH_TCP_PORT="${CH_TCP_PORT:-29000}" CH_INTERSERVER_PORT="${CH_INTERSERVER_PORT:-29100}"

echo "==> building benchmark/Burnrate.Benchmarks (Release)" >&2
dotnet build benchmark/Burnrate.Benchmarks/Burnrate.Benchmarks.csproj -c Release -nologo -v quiet >&2
bench() { dotnet benchmark/Burnrate.Benchmarks/bin/Release/net10.0/Burnrate.Benchmarks.dll clickhouse "$@"; }

for mode in single shards; do
  servers="$dir/clickhouse-$mode"
  rm -rf "$servers"
  deploy/clickhouse/local-cluster.sh start "$mode" "$servers" > /dev/null
  trap 'deploy/clickhouse/local-cluster.sh stop "$servers" >&2 || true' EXIT
  if [ "$mode" = single ]; then
    bench --urls "http://127.0.0.1:$CH_HTTP_PORT" --duckdb "$dir/ledger-hourly.duckdb" "$@"
  else
    bench --urls "http://127.0.0.1:$CH_HTTP_PORT,http://127.0.0.1:$((CH_HTTP_PORT + 1))" --cluster burnrate --label "2 shards" \
      --duckdb "$dir/ledger-hourly.duckdb" "$@"
  fi
  deploy/clickhouse/local-cluster.sh stop "$servers" >&2
  trap - EXIT
  rm -rf "$servers"
done
