namespace Burnrate.Simulation;

/// <summary>The built-in scenarios (<c>baseline</c> and <c>s1</c>..<c>s13</c>), embedded in Burnrate.Core.</summary>
public static class ScenarioLibrary
{
    /// <summary>The id that selects the baseline fleet plus every scenario.</summary>
    public const string All = "all";

    /// <summary>The background fleet every demo starts from.</summary>
    public const string Baseline = "baseline";

    private static readonly string s_resourcePrefix = "Burnrate.Simulation.Scenarios.";

    private static readonly Lazy<IReadOnlyList<Scenario>> s_lazyBuiltIn = new(LoadBuiltIn);

    /// <summary>Every built-in scenario: baseline first, then s1..s13 in number order.</summary>
    public static IReadOnlyList<Scenario> BuiltIn => s_lazyBuiltIn.Value;

    /// <summary>Id, title and expected signal of each built-in scenario.</summary>
    public static IReadOnlyList<ScenarioInfo> Infos => [.. BuiltIn.Select(s => s.Info)];

    /// <summary>One built-in scenario by id (case-insensitive).</summary>
    /// <exception cref="ArgumentException">No such scenario; the message lists the ids there are.</exception>
    public static Scenario Load(string id)
    {
        foreach (var scenario in BuiltIn)
        {
            if (scenario.Id.Equals(id, StringComparison.OrdinalIgnoreCase))
                return scenario;
        }
        throw new ArgumentException($"No built-in scenario '{id}'. Known: {All}, {string.Join(", ", BuiltIn.Select(s => s.Id))}.", nameof(id));
    }

    /// <summary>
    /// What <c>burnrate demo --scenario</c> plays: <c>all</c> is the baseline and every scenario; an id is that
    /// scenario alone; <c>baseline+s2</c> (ids joined by <c>+</c> or <c>,</c>) is several.
    /// </summary>
    public static IReadOnlyList<Scenario> Resolve(string selection)
    {
        if (selection.Equals(All, StringComparison.OrdinalIgnoreCase))
            return BuiltIn;
        return [.. selection.Split(['+', ','], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(Load)];
    }

    private static List<Scenario> LoadBuiltIn()
    {
        var assembly = typeof(ScenarioLibrary).Assembly;
        var scenarios = new List<Scenario>();
        foreach (var name in assembly.GetManifestResourceNames())
        {
            if (!name.StartsWith(s_resourcePrefix, StringComparison.Ordinal) || !name.EndsWith(".yaml", StringComparison.Ordinal))
                continue;
            using var stream = assembly.GetManifestResourceStream(name)!;
            using var reader = new StreamReader(stream);
            scenarios.Add(ScenarioFile.Parse(reader.ReadToEnd(), name[s_resourcePrefix.Length..]));
        }
        scenarios.Sort((a, b) => Rank(a.Id).CompareTo(Rank(b.Id)) is var c && c != 0 ? c : string.CompareOrdinal(a.Id, b.Id));
        return scenarios;
    }

    // baseline, then s1, s2, ... s13 numerically, then anything else.
    private static int Rank(string id) =>
        id == Baseline ? -1
        : id.Length > 1 && id[0] == 's' && int.TryParse(id.AsSpan(1), out var n) ? n
        : int.MaxValue;
}
