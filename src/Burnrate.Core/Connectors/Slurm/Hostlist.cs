using System.Globalization;
using System.Text;

namespace Burnrate.Connectors.Slurm;

/// <summary>
/// Slurm host lists: <c>gpu[01-03,07],login1</c> expands to <c>gpu01 gpu02 gpu03 gpu07 login1</c>; zero padding is
/// kept from the range's start. Also matches node names against configured patterns (a host list or a <c>*</c> glob).
/// </summary>
public static class Hostlist
{
    /// <summary>The most names one list may expand to (a typo such as <c>n[1-99999999]</c> must not exhaust memory).</summary>
    public const int MaxNames = 65_536;

    /// <summary>Expands <paramref name="list"/>; empty for <c>""</c>, <c>None assigned</c> and <c>(null)</c>.</summary>
    /// <exception cref="SlurmFormatException">Brackets do not balance or a range is not numeric.</exception>
    public static IReadOnlyList<string> Expand(string? list)
    {
        var names = new List<string>();
        if (string.IsNullOrWhiteSpace(list) || list is "None assigned" or "(null)" or "None")
            return names;
        var depth = 0;
        var start = 0;
        for (var i = 0; i <= list.Length; i++)
        {
            if (i < list.Length && list[i] == '[')
                depth++;
            else if (i < list.Length && list[i] == ']')
                depth--;
            else if (i == list.Length || (list[i] == ',' && depth == 0))
            {
                var part = list[start..i].Trim();
                if (part.Length > 0)
                    ExpandOne(part, names, list);
                start = i + 1;
            }
        }
        if (depth != 0)
            throw new SlurmFormatException($"host list '{list}': unbalanced brackets");
        return names;
    }

    private static void ExpandOne(string part, List<string> names, string whole)
    {
        var open = part.IndexOf('[', StringComparison.Ordinal);
        if (open < 0)
        {
            Add(names, part, whole);
            return;
        }
        var close = part.IndexOf(']', open);
        if (close < 0)
            throw new SlurmFormatException($"host list '{whole}': unbalanced brackets");
        var prefix = part[..open];
        var suffix = part[(close + 1)..];
        foreach (var range in part[(open + 1)..close].Split(','))
        {
            var dash = range.IndexOf('-', StringComparison.Ordinal);
            var from = dash < 0 ? range : range[..dash];
            var to = dash < 0 ? range : range[(dash + 1)..];
            if (!long.TryParse(from, NumberStyles.None, CultureInfo.InvariantCulture, out var a)
                || !long.TryParse(to, NumberStyles.None, CultureInfo.InvariantCulture, out var b) || b < a)
                throw new SlurmFormatException($"host list '{whole}': '{range}' is not a range like 01-04");
            if (b - a >= MaxNames)
                throw new SlurmFormatException($"host list '{whole}': more than {MaxNames} names");
            for (var n = a; n <= b; n++)
            {
                // The rest may hold more brackets (rack[1-2]-node[1-4]): expand it in turn.
                var number = n.ToString(CultureInfo.InvariantCulture).PadLeft(from.Length, '0');
                if (suffix.Contains('[', StringComparison.Ordinal))
                    ExpandOne(prefix + number + suffix, names, whole);
                else
                    Add(names, prefix + number + suffix, whole);
            }
        }
    }

    private static void Add(List<string> names, string name, string whole)
    {
        if (names.Count >= MaxNames)
            throw new SlurmFormatException($"host list '{whole}': more than {MaxNames} names");
        names.Add(name);
    }

    /// <summary>
    /// Whether <paramref name="node"/> matches <paramref name="pattern"/>: a host list (<c>gpu[01-16]</c>), a glob
    /// with <c>*</c> (<c>gpu-*</c>), or a plain name.
    /// </summary>
    public static bool Matches(string pattern, string node)
    {
        if (pattern.Contains('*', StringComparison.Ordinal))
        {
            var regex = "^" + System.Text.RegularExpressions.Regex.Escape(pattern).Replace("\\*", ".*", StringComparison.Ordinal) + "$";
            return System.Text.RegularExpressions.Regex.IsMatch(node, regex, System.Text.RegularExpressions.RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
        }
        foreach (var name in Expand(pattern))
        {
            if (name == node)
                return true;
        }
        return false;
    }

    /// <summary>Joins names back with commas (no compression: for labels and messages).</summary>
    public static string Join(IEnumerable<string> names)
    {
        var text = new StringBuilder();
        foreach (var n in names)
        {
            if (text.Length > 0)
                text.Append(',');
            text.Append(n);
        }
        return text.ToString();
    }
}
