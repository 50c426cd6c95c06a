namespace Burnrate.Inventory;

/// <summary>How a GPU is shared.</summary>
public enum GpuShareKind
{
    /// <summary>The whole GPU belongs to one workload.</summary>
    Whole,
    /// <summary>A MIG instance: the workload pays the profile's compute slices out of the GPU's seven.</summary>
    Mig,
    /// <summary>Time-slicing or MPS: the workload pays <c>Numerator/Denominator</c> of the GPU.</summary>
    Shared,
}

/// <summary>
/// The part of one GPU that one workload holds, as an exact fraction.
/// </summary>
public readonly record struct GpuShare(GpuShareKind Kind, int Numerator, int Denominator, string Profile = "")
{
    /// <summary>Compute slices of a full GPU under MIG on A100, A30 (4), H100, H200 and B200; see <see cref="Mig"/>.</summary>
    public const int MigComputeSlices = 7;

    public static GpuShare Whole { get; } = new(GpuShareKind.Whole, 1, 1);

    /// <summary>
    /// A MIG profile such as <c>1g.10gb</c>, <c>3g.40gb</c> or <c>7g.80gb</c>: the share is the compute slice
    /// count (the number before <c>g</c>) over seven. Throws <see cref="FormatException"/> for anything else.
    /// </summary>
    public static GpuShare Mig(string profile)
    {
        if (!TryParseMigProfile(profile, out var slices))
            throw new FormatException($"'{profile}' is not a MIG profile such as 1g.10gb or 3g.40gb.");
        return new GpuShare(GpuShareKind.Mig, slices, MigComputeSlices, profile);
    }

    /// <summary>A time-sliced or MPS share: <paramref name="numerator"/> of <paramref name="denominator"/> equal parts.</summary>
    public static GpuShare Shared(int numerator, int denominator)
    {
        if (denominator <= 0 || numerator <= 0 || numerator > denominator)
            throw new ArgumentOutOfRangeException(nameof(numerator), $"A shared GPU part must be within (0, 1], got {numerator}/{denominator}.");
        return new GpuShare(GpuShareKind.Shared, numerator, denominator);
    }

    /// <summary>Parses the compute slice count out of a MIG profile name (<c>1g.10gb</c> → 1; <c>1g.10gb+me</c> → 1).</summary>
    public static bool TryParseMigProfile(string? profile, out int slices)
    {
        slices = 0;
        if (string.IsNullOrEmpty(profile))
            return false;
        var g = profile.IndexOf('g', StringComparison.Ordinal);
        if (g <= 0 || g + 1 >= profile.Length || profile[g + 1] != '.')
            return false;
        return int.TryParse(profile.AsSpan(0, g), out slices) && slices is >= 1 and <= MigComputeSlices;
    }

    public override string ToString() => Kind switch
    {
        GpuShareKind.Whole => "whole",
        GpuShareKind.Mig => $"mig:{Profile}",
        _ => $"shared:{Numerator}/{Denominator}",
    };
}
