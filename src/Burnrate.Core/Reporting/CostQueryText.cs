using Burnrate.Storage;

namespace Burnrate.Reporting;

/// <summary>
/// Parsing of the textual parts of a cost query, shared by the CLI and the HTTP API so both accept the same
/// dimension names and report the same mistakes.
/// </summary>
public static class CostQueryText
{
    /// <summary>
    /// Parses a comma-separated list of dimension names (<c>team,project</c>). A dimension named twice (or by two
    /// aliases, e.g. <c>cloud,provider</c>) is kept once. An empty list is allowed (one total row).
    /// </summary>
    public static bool TryParseDimensions(string? text, out IReadOnlyList<CostDimension> dimensions, out string? error)
    {
        var list = new List<CostDimension>();
        dimensions = list;
        error = null;
        if (string.IsNullOrWhiteSpace(text))
            return true;
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (!CostDimensions.TryParse(part, out var dimension))
            {
                error = UnknownDimension(part);
                return false;
            }
            if (!list.Contains(dimension))
                list.Add(dimension);
        }
        return true;
    }

    /// <summary>
    /// Parses one filter, <c>DIM{keySeparator}V1{valueSeparator}V2</c> (the CLI uses <c>team=ml,infra</c>, the API
    /// <c>team:ml|infra</c>), and adds its values to <paramref name="filters"/> (a dimension filtered twice accepts
    /// the values of both).
    /// </summary>
    public static bool TryAddFilter(string? text, char keySeparator, char valueSeparator, Dictionary<CostDimension, List<string>> filters, out string? error)
    {
        error = null;
        var at = text?.IndexOf(keySeparator, StringComparison.Ordinal) ?? -1;
        if (text is null || at <= 0)
        {
            error = $"filter '{text}' is not of the form DIM{keySeparator}VALUE[{valueSeparator}VALUE...]";
            return false;
        }
        var name = text[..at].Trim();
        if (!CostDimensions.TryParse(name, out var dimension))
        {
            error = UnknownDimension(name);
            return false;
        }
        var values = text[(at + 1)..].Split(valueSeparator, StringSplitOptions.TrimEntries);
        if (values.All(v => v.Length == 0) && dimension != CostDimension.Workload)
        {
            error = $"filter '{text}' has no value";
            return false;
        }
        if (!filters.TryGetValue(dimension, out var list))
        {
            list = [];
            filters.Add(dimension, list);
        }
        list.AddRange(values.Where(v => !list.Contains(v)));
        return true;
    }

    /// <summary>Converts filters built by <see cref="TryAddFilter"/> to the shape of <see cref="CostQuery.Filters"/>.</summary>
    public static IReadOnlyDictionary<CostDimension, IReadOnlyList<string>> Freeze(Dictionary<CostDimension, List<string>> filters) =>
        filters.ToDictionary(f => f.Key, f => (IReadOnlyList<string>)f.Value.ToArray());

    /// <summary>The message for a dimension name that is not known, listing the valid names.</summary>
    public static string UnknownDimension(string name) =>
        $"unknown dimension '{name}'; valid dimensions: {string.Join(", ", CostDimensions.Names)}";
}
