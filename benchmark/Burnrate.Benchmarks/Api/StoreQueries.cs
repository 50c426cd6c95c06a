using System.Diagnostics;
using System.Globalization;
using Burnrate;
using Burnrate.Storage;
using Burnrate.Storage.DuckDb;

namespace Burnrate.Benchmarks.Api;

/// <summary>
/// The store calls behind <c>GET /api/v1/workloads/{id}</c> and <c>GET /api/v1/workloads</c>, timed one by one on the
/// ledger directly (the server stopped), to say which of them costs what.
/// </summary>
internal static class StoreQueries
{
    private static readonly int[] s_stepMinutes = [1, 5, 15, 60, 360, 1440, 10080];

    public static async Task RunAsync(string data, string workload, int runs)
    {
        await using var store = await DuckDbCostStore.OpenAsync(Path.Combine(data, "burnrate.duckdb"));
        var span = await store.GetLedgerSpanAsync() ?? throw new InvalidOperationException("empty ledger");
        var now = DateTimeOffset.UtcNow;
        var records = await store.GetWorkloadsAsync();
        var record = records.First(r => r.Workload.Id == workload);
        // As the endpoint picks it: the first of 1m, 5m, 15m, 1h, 6h, 1d, 7d giving at most 500 points.
        var step = s_stepMinutes.Select(m => TimeSpan.FromMinutes(m)).FirstOrDefault(s => (now - record.Started).Ticks <= s.Ticks * 500, TimeSpan.FromDays(7));
        var from = new DateTimeOffset(record.Started.UtcTicks / step.Ticks * step.Ticks, TimeSpan.Zero);
        var to = new DateTimeOffset((now.UtcTicks + step.Ticks - 1) / step.Ticks * step.Ticks, TimeSpan.Zero);
        var filter = new Dictionary<CostDimension, IReadOnlyList<string>> { [CostDimension.Workload] = [workload] };
        var calls = new (string Name, Func<Task> Call)[]
        {
            ("GetLedgerSpanAsync (first and last hour of cost_hourly, then those hours' minutes)", () => store.GetLedgerSpanAsync()),
            ($"GetWorkloadsAsync ({records.Count} records)", () => store.GetWorkloadsAsync()),
            ($"timeline: costs of {workload}, {from:yyyy-MM-dd} to now, step {step.TotalHours} h", () => store.QueryCostsAsync(new CostQuery { From = from, To = to, Step = step, Filters = filter })),
            ($"nodes: costs of {workload} by resource, cloud, GPU", () => store.QueryCostsAsync(new CostQuery { From = from, To = to, By = [CostDimension.Resource, CostDimension.Cloud, CostDimension.Gpu], Filters = filter })),
            ($"detail (what the endpoint runs now): costs of {workload} by resource, cloud, GPU, step {step.TotalHours} h", () => store.QueryCostsAsync(new CostQuery { From = from, To = to, Step = step, By = [CostDimension.Resource, CostDimension.Cloud, CostDimension.Gpu], Filters = filter })),
            ($"GetWorkTotalsAsync ({workload})", () => store.GetWorkTotalsAsync(from, to, [workload])),
            ("list: costs by workload, cloud over the whole ledger", () => store.QueryCostsAsync(new CostQuery { From = span.First, To = span.Last.AddMinutes(1), By = [CostDimension.Workload, CostDimension.Cloud] })),
        };
        Console.WriteLine();
        Console.WriteLine($"Store calls behind the workload endpoints, {runs} runs each after 3 warm-up, server stopped:");
        Console.WriteLine("| call | median ms | max ms |");
        Console.WriteLine("|---|---:|---:|");
        foreach (var (name, call) in calls)
        {
            for (var i = 0; i < 3; i++)
                await call();
            var times = new List<double>();
            for (var i = 0; i < runs; i++)
            {
                var started = Stopwatch.GetTimestamp();
                await call();
                times.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {name} | {ApiBenchmark.Percentile(times, 0.5):F1} | {times.Max():F1} |"));
        }

        // As a live server does every minute: one minute of 2,000 GPUs written through WriteAsync (the current minute,
        // on probe resources, at $0 so the ledger's totals stay), then the span again.
        var minute = new DateTimeOffset(now.UtcTicks / TimeSpan.TicksPerMinute * TimeSpan.TicksPerMinute, TimeSpan.Zero);
        var lines = Enumerable.Range(0, 2000).Select(g => new Burnrate.Rating.CostLine
        {
            Minute = minute,
            SegmentStart = 0,
            Seconds = 60,
            ResourceId = $"probe-node-{g / 8}",
            GpuIndex = g % 8,
            WorkloadId = "",
            Component = Burnrate.Rating.CostComponent.Gpu,
            Rate = new HourlyRate(0),
            SharePpm = 1_000_000,
            Quantity = 60m,
            Cost = new Money(0),
            PriceSource = "probe",
            Provider = "aws",
            Region = "us-east-1",
            InstanceType = "p4d.24xlarge",
            Capacity = Burnrate.Pricing.CapacityType.OnDemand,
            GpuModel = "A100",
            Cluster = "",
            Orchestrator = "",
            Team = "",
            Project = "",
            User = "",
        }).ToList();
        for (var round = 0; round < 2; round++)
        {
            var write = Stopwatch.GetTimestamp();
            await store.WriteAsync(lines);
            var writeMs = Stopwatch.GetElapsedTime(write).TotalMilliseconds;
            var times = new List<double>();
            for (var i = 0; i < runs; i++)
            {
                var started = Stopwatch.GetTimestamp();
                await store.GetLedgerSpanAsync();
                times.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| GetLedgerSpanAsync after WriteAsync of 2,000 lines (write #{round + 1}: {writeMs:F0} ms) | {ApiBenchmark.Percentile(times, 0.5):F1} | {times.Max():F1} |"));
        }
    }
}
