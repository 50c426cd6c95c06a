using Burnrate.Pricing;
using Burnrate.Rating;
using Burnrate.Storage;

namespace Burnrate.Tests.Storage;

/// <summary>Builds ledger lines for store tests: sensible defaults, override what the test is about.</summary>
internal static class SomeLines
{
    public static readonly DateTimeOffset Day0 = new(2025, 3, 10, 0, 0, 0, TimeSpan.Zero);

    private static readonly string[] s_teams = ["ml-research", "inference", "platform", "vision"];
    private static readonly string[] s_projects = ["llama-ft", "chatbot", "ocr", ""];
    private static readonly string[] s_users = ["alice", "bob", "carol", ""];
    private static readonly string[] s_providers = ["aws", "gcp", "azure"];
    private static readonly string[] s_regions = ["us-east-1", "europe-west4", "eastus"];
    private static readonly string[] s_gpus = ["H100", "A100", "L4"];
    private static readonly string[] s_workloads = ["slurm:1", "k8s:ml/vllm", "skypilot:train", ""];

    public static CostLine Line(
        DateTimeOffset minute,
        long costNanos = 1_000_000,
        string team = "ml-research",
        string workloadId = "slurm:4242",
        string resourceId = "node-a",
        int gpuIndex = 0,
        CostComponent component = CostComponent.Gpu,
        int segmentStart = 0,
        int seconds = 60,
        decimal quantity = 60m,
        string project = "llama-ft",
        string user = "alice",
        string provider = "aws",
        string region = "us-east-1",
        string gpuModel = "H100",
        CapacityType capacity = CapacityType.OnDemand) => new()
        {
            Minute = minute,
            SegmentStart = segmentStart,
            Seconds = seconds,
            ResourceId = resourceId,
            GpuIndex = component == CostComponent.Gpu ? gpuIndex : -1,
            WorkloadId = workloadId,
            Component = component,
            Rate = new HourlyRate(costNanos * 60),
            SharePpm = 1_000_000,
            Quantity = quantity,
            Cost = new Money(costNanos),
            PriceSource = "test",
            Provider = provider,
            Region = region,
            InstanceType = "p5.48xlarge",
            Capacity = capacity,
            GpuModel = gpuModel,
            Cluster = "main",
            Orchestrator = "slurm",
            Team = team,
            Project = project,
            User = user,
        };

    /// <summary>
    /// <paramref name="count"/> random lines with unique keys, spread over <paramref name="days"/> days from
    /// <see cref="Day0"/>, with partial-minute segments, idle rows and every component.
    /// </summary>
    public static List<CostLine> Random(Random random, int count, int days = 3)
    {
        var byKey = new Dictionary<(DateTimeOffset, string, int, string, CostComponent, int), CostLine>();
        var minutes = days * 24 * 60;
        while (byKey.Count < count)
        {
            var component = (CostComponent)random.Next(4);
            var workload = Pick(random, s_workloads);
            var line = Line(
                Day0.AddMinutes(random.Next(minutes)),
                costNanos: random.NextInt64(1, 5_000_000_000),
                team: Pick(random, s_teams),
                workloadId: workload,
                resourceId: "node-" + random.Next(6),
                gpuIndex: random.Next(8),
                component: component,
                segmentStart: random.Next(3) == 0 ? 30 : 0,
                seconds: 30,
                quantity: random.Next(0, 60_000_000) / 1_000_000m,
                project: Pick(random, s_projects),
                user: Pick(random, s_users),
                provider: Pick(random, s_providers),
                region: Pick(random, s_regions),
                gpuModel: Pick(random, s_gpus),
                capacity: (CapacityType)random.Next(3));
            byKey[(line.Minute, line.ResourceId, line.GpuIndex, line.WorkloadId, line.Component, line.SegmentStart)] = line;
        }
        return [.. byKey.Values];
    }

    private static string Pick(Random random, string[] values) => values[random.Next(values.Length)];

    /// <summary>The naive answer: sums the raw lines in C#, for comparison with the store's rollup path.</summary>
    public static List<CostReportRow> BruteForce(IEnumerable<CostLine> lines, CostQuery query)
    {
        var groups = new Dictionary<string, (string[] Keys, DateTimeOffset? Bucket, long Cost, long Idle, decimal GpuSeconds)>(StringComparer.Ordinal);
        foreach (var line in lines)
        {
            if (line.Minute < query.From || line.Minute >= query.To)
                continue;
            if (query.Filters.Any(f => !f.Value.Contains(KeyOf(line, f.Key))))
                continue;
            var keys = query.By.Select(d => KeyOf(line, d)).ToArray();
            DateTimeOffset? bucket = query.Step is { } step
                ? query.From + (step * ((line.Minute - query.From).Ticks / step.Ticks))
                : null;
            var id = string.Join('\u001f', keys) + "\u001f" + bucket?.UtcTicks;
            groups.TryGetValue(id, out var g);
            groups[id] = (
                keys,
                bucket,
                g.Cost + line.Cost.Nanos,
                g.Idle + (line.IsIdle ? line.Cost.Nanos : 0),
                g.GpuSeconds + (line.Component == CostComponent.Gpu ? line.Quantity : 0m));
        }
        return [.. groups.Values.Select(g => new CostReportRow(g.Keys, g.Bucket, new Money(g.Cost), new Money(g.Idle), g.GpuSeconds))];
    }

    public static string KeyOf(CostLine line, CostDimension dimension) => dimension switch
    {
        CostDimension.Team => line.Team,
        CostDimension.Project => line.Project,
        CostDimension.User => line.User,
        CostDimension.Workload => line.WorkloadId,
        CostDimension.Cloud => line.Provider,
        CostDimension.Region => line.Region,
        CostDimension.Gpu => line.GpuModel,
        CostDimension.InstanceType => line.InstanceType,
        CostDimension.Capacity => line.Capacity.ToName(),
        CostDimension.Component => line.Component.ToString().ToLowerInvariant(),
        CostDimension.Cluster => line.Cluster,
        CostDimension.Orchestrator => line.Orchestrator,
        CostDimension.Resource => line.ResourceId,
        CostDimension.Idle => line.IsIdle ? "true" : "false",
        _ => throw new ArgumentOutOfRangeException(nameof(dimension)),
    };

    /// <summary>A report as comparable text, independent of the order of rows with equal cost.</summary>
    public static List<string> Canonical(IEnumerable<CostReportRow> rows) =>
        [.. rows.Select(r => $"{string.Join(',', r.Keys)}|{r.BucketStart?.UtcDateTime:O}|{r.Cost.Nanos}|{r.IdleCost.Nanos}|{r.GpuSeconds:0.000000}")
            .Order(StringComparer.Ordinal)];
}
