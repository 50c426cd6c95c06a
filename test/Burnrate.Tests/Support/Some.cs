using Burnrate.Attribution;
using Burnrate.Inventory;
using Burnrate.Pricing;

namespace Burnrate.Tests.Support;

/// <summary>Test data factory.</summary>
internal static class Some
{
    public static readonly DateTimeOffset Noon = new(2026, 3, 2, 12, 0, 0, TimeSpan.Zero);

    public static DateTimeOffset At(int hour, int minute, int second = 0) => new(2026, 3, 2, hour, minute, second, TimeSpan.Zero);

    public static InstancePrice Price(string type, CapacityType capacity, decimal perHour, decimal gpuPerHour, int gpus, DateTimeOffset? from = null,
        string provider = "aws", string region = "us-east-1", string zone = "", string model = "A100") =>
        new(provider, region, zone, type, capacity, perHour, gpuPerHour, gpus, model, 96, 1152, from ?? DateTimeOffset.UnixEpoch, "test");

    public static NodeSpec Node(string id, string type, int gpus, CapacityType capacity = CapacityType.OnDemand, string model = "A100",
        IReadOnlyDictionary<string, string>? labels = null) =>
        new(id, "aws", "us-east-1", "us-east-1a", type, capacity, gpus, model, "cluster-1", "123456789012", labels);

    public static WorkloadInfo Workload(string id, string team = "ml", string user = "alice", string project = "llm") =>
        new(id, "slurm", id, user, team, project);
}
