namespace Burnrate.Pricing;

/// <summary>How a resource is bought.</summary>
public enum CapacityType
{
    OnDemand,
    Spot,
    Reserved,
}

/// <summary>Parsing and printing of <see cref="CapacityType"/> in the forms found in labels and files.</summary>
public static class CapacityTypes
{
    /// <summary>The canonical lower-case name: <c>on_demand</c>, <c>spot</c>, <c>reserved</c>.</summary>
    public static string ToName(this CapacityType capacity) => capacity switch
    {
        CapacityType.OnDemand => "on_demand",
        CapacityType.Spot => "spot",
        CapacityType.Reserved => "reserved",
        _ => throw new ArgumentOutOfRangeException(nameof(capacity)),
    };

    /// <summary>
    /// Accepts the spellings used by clouds and orchestrators: <c>on-demand</c>, <c>ON_DEMAND</c>, <c>ondemand</c>,
    /// <c>spot</c>, <c>preemptible</c>, <c>SPOT</c> (GKE), <c>reserved</c>, <c>committed</c>.
    /// </summary>
    public static bool TryParse(string? text, out CapacityType capacity)
    {
        capacity = CapacityType.OnDemand;
        if (string.IsNullOrWhiteSpace(text))
            return false;
        var normalized = text.Trim().Replace("-", "", StringComparison.Ordinal).Replace("_", "", StringComparison.Ordinal).ToLowerInvariant();
        switch (normalized)
        {
            case "ondemand":
            case "normal":
            case "regular":
            case "standard":
                capacity = CapacityType.OnDemand;
                return true;
            case "spot":
            case "preemptible":
            case "lowpriority":
            case "interruptible":
                capacity = CapacityType.Spot;
                return true;
            case "reserved":
            case "committed":
            case "reservation":
                capacity = CapacityType.Reserved;
                return true;
            default:
                return false;
        }
    }
}
