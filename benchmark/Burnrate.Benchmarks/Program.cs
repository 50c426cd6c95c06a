using BenchmarkDotNet.Running;
using Burnrate.Benchmarks.Api;

namespace Burnrate.Benchmarks;

internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        // `api ...`: the API and dashboard response-time benchmark (benchmark/api.sh); `clickhouse` and `reconcile` below;
        // anything else is BenchmarkDotNet's.
        if (args.Length > 0 && args[0] == "api")
            return await ApiBenchmark.RunAsync(args[1..]);
        // `clickhouse ...`: the ClickHouse store's writer and queries against DuckDB (benchmark/clickhouse.sh).
        if (args.Length > 0 && args[0] == "clickhouse")
            return await Storage.ClickHouseBenchmark.RunAsync(args[1..]);
        // `reconcile ...`: import + reconciliation + calibration for a month of a fleet (docs/performance.md).
        if (args.Length > 0 && args[0] == "reconcile")
            return await Billing.ReconcileBenchmark.RunAsync(args[1..]);
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
