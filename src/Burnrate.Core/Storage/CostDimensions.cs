namespace Burnrate.Storage;

/// <summary>Names of <see cref="CostDimension"/> as the CLI and API spell them.</summary>
public static class CostDimensions
{
    private static readonly (string Name, CostDimension Dimension)[] s_names =
    [
        ("team", CostDimension.Team),
        ("project", CostDimension.Project),
        ("user", CostDimension.User),
        ("workload", CostDimension.Workload),
        ("cloud", CostDimension.Cloud),
        ("provider", CostDimension.Cloud),
        ("region", CostDimension.Region),
        ("gpu", CostDimension.Gpu),
        ("instance_type", CostDimension.InstanceType),
        ("capacity", CostDimension.Capacity),
        ("component", CostDimension.Component),
        ("cluster", CostDimension.Cluster),
        ("orchestrator", CostDimension.Orchestrator),
        ("resource", CostDimension.Resource),
        ("node", CostDimension.Resource),
        ("idle", CostDimension.Idle),
    ];

    /// <summary>The accepted names, for help texts and error messages.</summary>
    public static IReadOnlyList<string> Names { get; } = s_names.Select(n => n.Name).ToArray();

    public static bool TryParse(string? name, out CostDimension dimension)
    {
        foreach (var (n, d) in s_names)
        {
            if (string.Equals(n, name?.Trim(), StringComparison.OrdinalIgnoreCase))
            {
                dimension = d;
                return true;
            }
        }
        dimension = default;
        return false;
    }

    public static string ToName(this CostDimension dimension) => dimension switch
    {
        CostDimension.InstanceType => "instance_type",
        _ => dimension.ToString().ToLowerInvariant(),
    };
}
