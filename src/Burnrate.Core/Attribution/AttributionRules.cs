using System.Text;
using System.Text.RegularExpressions;

namespace Burnrate.Attribution;

/// <summary>
/// One mapping rule from the config file: when every <see cref="Match"/> pattern matches, fill the fields in
/// <see cref="Set"/>. Keys of <see cref="Match"/> are <c>orchestrator</c>, <c>name</c>, <c>user</c>, <c>team</c>,
/// <c>project</c>, <c>model</c>, <c>id</c> or a label name; values are globs (<c>*</c>, <c>?</c>). Values of
/// <see cref="Set"/> may use <c>{label:NAME}</c> and <c>{user}</c>, <c>{name}</c>, <c>{orchestrator}</c>.
/// </summary>
public sealed class AttributionRule
{
    public IReadOnlyDictionary<string, string> Match { get; init; } = new Dictionary<string, string>();
    public IReadOnlyDictionary<string, string> Set { get; init; } = new Dictionary<string, string>();
    /// <summary>When true, the rule replaces a value the workload already has; by default explicit values win.</summary>
    public bool Override { get; init; }
}

/// <summary>
/// Derives team, project, user and model of workloads (and owners of nodes) from their labels, in rule order:
/// for each field, the first matching rule that yields a non-empty value sets it.
/// </summary>
public sealed class AttributionRules
{
    private static readonly string[] s_fields = ["team", "project", "user", "model"];
    private readonly (AttributionRule Rule, (string Key, Regex Pattern)[] Matchers)[] _rules;

    public AttributionRules(IEnumerable<AttributionRule> rules)
    {
        var list = new List<(AttributionRule, (string, Regex)[])>();
        foreach (var rule in rules)
        {
            foreach (var key in rule.Set.Keys)
            {
                if (Array.IndexOf(s_fields, key) < 0)
                    throw new ArgumentException($"attribution rule sets '{key}': only team, project, user and model can be set.");
            }
            var matchers = rule.Match.Select(m => (m.Key, GlobToRegex(m.Value))).ToArray();
            list.Add((rule, matchers));
        }
        _rules = [.. list];
    }

    /// <summary>No rules: workloads keep what they carry.</summary>
    public static AttributionRules None { get; } = new([]);

    public int Count => _rules.Length;

    /// <summary>Returns the workload with team, project, user and model derived by the rules.</summary>
    public WorkloadInfo Apply(WorkloadInfo workload)
    {
        if (_rules.Length == 0)
            return workload;
        string team = workload.Team, project = workload.Project, user = workload.User, model = workload.Model;
        foreach (var (rule, matchers) in _rules)
        {
            if (!Matches(workload, matchers))
                continue;
            foreach (var (field, template) in rule.Set)
            {
                var value = Expand(template, workload);
                if (value.Length == 0)
                    continue;
                switch (field)
                {
                    case "team" when rule.Override || team.Length == 0: team = value; break;
                    case "project" when rule.Override || project.Length == 0: project = value; break;
                    case "user" when rule.Override || user.Length == 0: user = value; break;
                    case "model" when rule.Override || model.Length == 0: model = value; break;
                }
            }
        }
        return workload with { Team = team, Project = project, User = user, Model = model };
    }

    private static bool Matches(WorkloadInfo w, (string Key, Regex Pattern)[] matchers)
    {
        foreach (var (key, pattern) in matchers)
        {
            var value = Field(w, key);
            if (value is null || !pattern.IsMatch(value))
                return false;
        }
        return true;
    }

    private static string? Field(WorkloadInfo w, string key) => key switch
    {
        "id" => w.Id,
        "orchestrator" => w.Orchestrator,
        "name" => w.Name,
        "user" => w.User,
        "team" => w.Team,
        "project" => w.Project,
        "model" => w.Model,
        _ => w.Labels is not null && w.Labels.TryGetValue(key, out var v) ? v : null,
    };

    private static string Expand(string template, WorkloadInfo w)
    {
        if (!template.Contains('{', StringComparison.Ordinal))
            return template;
        var sb = new StringBuilder();
        var i = 0;
        while (i < template.Length)
        {
            var open = template.IndexOf('{', i);
            if (open < 0)
            {
                sb.Append(template, i, template.Length - i);
                break;
            }
            var close = template.IndexOf('}', open);
            if (close < 0)
                throw new FormatException($"attribution template '{template}' has an unclosed '{{'.");
            sb.Append(template, i, open - i);
            var name = template[(open + 1)..close];
            var value = name.StartsWith("label:", StringComparison.Ordinal)
                ? (w.Labels is not null && w.Labels.TryGetValue(name[6..], out var l) ? l : null)
                : Field(w, name);
            if (string.IsNullOrEmpty(value))
                return ""; // a template with a missing part yields nothing, so a later rule can try
            sb.Append(value);
            i = close + 1;
        }
        return sb.ToString();
    }

    private static Regex GlobToRegex(string glob) =>
        new("^" + Regex.Escape(glob).Replace(@"\*", ".*", StringComparison.Ordinal).Replace(@"\?", ".", StringComparison.Ordinal) + "$",
            RegexOptions.CultureInvariant | RegexOptions.IgnoreCase);
}
