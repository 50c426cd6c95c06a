using System.Globalization;
using Burnrate.Connectors.SkyPilot;
using Burnrate.Connectors.Slurm;
using Burnrate.Pricing;

namespace Burnrate.Configuration;

/// <summary>The orchestrators <c>burnrate serve</c> polls (config <c>connectors</c>, docs/connectors.md).</summary>
public sealed class ConnectorsSection
{
    /// <summary>The Slurm connector; null (no key) leaves it off.</summary>
    public SlurmSection? Slurm { get; set; }

    /// <summary>The SkyPilot connector; null (no key) leaves it off.</summary>
    public SkyPilotSection? Skypilot { get; set; }

    /// <summary>Config <c>connectors.skypilot</c>.</summary>
    public sealed class SkyPilotSection
    {
        public bool Enabled { get; set; } = true;
        /// <summary>The API server's URL.</summary>
        public string Url { get; set; } = "";
        public string Interval { get; set; } = "15s";
        public string Timeout { get; set; } = "30s";
        /// <summary>The environment variable holding a bearer token for the API server, or null.</summary>
        public string? TokenEnv { get; set; }
    }

    /// <summary>
    /// The SkyPilot connector's options, or null when it is off; a token named by <c>token_env</c> is read through
    /// <paramref name="environment"/>; what it reported is kept in <paramref name="stateFile"/> (null: memory only).
    /// </summary>
    /// <exception cref="ArgumentException">A value is wrong; the message names its key.</exception>
    public SkyPilotOptions? ToSkyPilotOptions(Func<string, string?>? environment = null, string? stateFile = null)
    {
        if (Skypilot is not { Enabled: true } s)
            return null;
        const string Where = "connectors.skypilot";
        if (!Uri.TryCreate(s.Url, UriKind.Absolute, out var url) || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps))
            throw new ArgumentException($"{Where}.url must be the API server's http(s) URL, got '{s.Url}'");
        string? token = null;
        if (s.TokenEnv is { } name)
        {
            token = (environment ?? Environment.GetEnvironmentVariable)(name);
            if (string.IsNullOrEmpty(token))
                throw new ArgumentException($"{Where}.token_env: the environment variable {name} is not set");
        }
        return new SkyPilotOptions
        {
            Url = url,
            Interval = Positive(Durations.Parse(s.Interval, Where + ".interval"), Where + ".interval"),
            Timeout = Positive(Durations.Parse(s.Timeout, Where + ".timeout"), Where + ".timeout"),
            Token = token,
            StateFile = stateFile,
        };
    }

    /// <summary>Config <c>connectors.slurm</c>.</summary>
    public sealed class SlurmSection
    {
        public bool Enabled { get; set; } = true;
        public string Cluster { get; set; } = "slurm";
        public string Interval { get; set; } = "15s";
        public string Timeout { get; set; } = "30s";
        public string Lookback { get; set; } = "1h";
        public string BinDir { get; set; } = "";
        /// <summary><c>auto</c>, <c>json</c> or <c>parsable</c>.</summary>
        public string Format { get; set; } = "auto";
        public string Provider { get; set; } = "onprem";
        /// <summary><c>project</c>, <c>team</c> or <c>none</c>.</summary>
        public string AccountAs { get; set; } = "project";
        /// <summary>$/GPU-hour by GPU model or GRES type; <c>default</c> for the others.</summary>
        public Dictionary<string, string> GpuRates { get; set; } = [];
        public List<SlurmNodeTypeSection> NodeTypes { get; set; } = [];
    }

    /// <summary>One item of <c>connectors.slurm.node_types</c>.</summary>
    public sealed class SlurmNodeTypeSection
    {
        public string Nodes { get; set; } = "";
        public string? Type { get; set; }
        public int? Gpus { get; set; }
        public string GpuModel { get; set; } = "";
        public string? GpuHour { get; set; }
        public string? NodeHour { get; set; }
        public string? Provider { get; set; }
        public string Region { get; set; } = "";
        public string Zone { get; set; } = "";
        public string InstanceType { get; set; } = "";
        public string Capacity { get; set; } = "on_demand";
    }

    /// <summary>The Slurm connector's options, or null when it is off; <paramref name="stateFile"/> is where it keeps what it reported.</summary>
    /// <exception cref="ArgumentException">A value is wrong; the message names its key.</exception>
    public SlurmOptions? ToSlurmOptions(string? stateFile = null)
    {
        if (Slurm is not { Enabled: true } s)
            return null;
        const string Where = "connectors.slurm";
        var format = s.Format switch
        {
            "auto" => SlurmFormat.Auto,
            "json" => SlurmFormat.Json,
            "parsable" => SlurmFormat.Parsable,
            _ => throw new ArgumentException($"{Where}.format must be auto, json or parsable, got '{s.Format}'"),
        };
        if (s.AccountAs is not ("project" or "team" or "none"))
            throw new ArgumentException($"{Where}.account_as must be project, team or none, got '{s.AccountAs}'");
        if (string.IsNullOrWhiteSpace(s.Cluster))
            throw new ArgumentException($"{Where}.cluster must not be empty");
        if (string.IsNullOrWhiteSpace(s.Provider))
            throw new ArgumentException($"{Where}.provider must not be empty");
        var rates = new Dictionary<string, decimal>(StringComparer.Ordinal);
        foreach (var (model, text) in s.GpuRates)
            rates[model.ToLowerInvariant()] = Dollars(text, $"{Where}.gpu_rates.{model}");
        var types = new List<SlurmNodeType>();
        for (var i = 0; i < s.NodeTypes.Count; i++)
        {
            var t = s.NodeTypes[i];
            var at = string.Create(CultureInfo.InvariantCulture, $"{Where}.node_types[{i}]");
            if (string.IsNullOrWhiteSpace(t.Nodes))
                throw new ArgumentException($"{at}.nodes is required: a host list (gpu[01-16]) or a glob (gpu-*)");
            try
            {
                _ = Hostlist.Matches(t.Nodes, "");
            }
            catch (SlurmFormatException e)
            {
                throw new ArgumentException($"{at}.nodes: {e.Message}", e);
            }
            if (t.Gpus is < 0)
                throw new ArgumentException($"{at}.gpus must be 0 or more, got {t.Gpus}");
            CapacityType capacity;
            if (t.Provider is not null)
            {
                if (string.IsNullOrWhiteSpace(t.Region) || string.IsNullOrWhiteSpace(t.InstanceType))
                    throw new ArgumentException($"{at}: a cloud node type (provider: {t.Provider}) needs region and instance_type");
                if (t.GpuHour is not null || t.NodeHour is not null)
                    throw new ArgumentException($"{at}: give either provider/region/instance_type (priced from the price book) or gpu_hour/node_hour, not both");
                if (!CapacityTypes.TryParse(t.Capacity, out capacity))
                    throw new ArgumentException($"{at}.capacity: '{t.Capacity}' is not a capacity type (on_demand, spot, reserved)");
            }
            else
            {
                capacity = CapacityType.OnDemand;
            }
            types.Add(new SlurmNodeType(
                t.Nodes,
                string.IsNullOrWhiteSpace(t.Type) ? "slurm-" + t.Nodes.Replace('[', '-').Replace("]", "", StringComparison.Ordinal).Replace(',', '-').Replace('*', 'x') : t.Type,
                t.Gpus,
                t.GpuModel,
                t.GpuHour is null ? null : Dollars(t.GpuHour, at + ".gpu_hour"),
                t.NodeHour is null ? 0 : Dollars(t.NodeHour, at + ".node_hour"),
                t.Provider?.ToLowerInvariant(),
                t.Region,
                t.Zone,
                t.InstanceType,
                capacity));
        }
        return new SlurmOptions
        {
            Cluster = s.Cluster,
            Interval = Positive(Durations.Parse(s.Interval, Where + ".interval"), Where + ".interval"),
            Timeout = Positive(Durations.Parse(s.Timeout, Where + ".timeout"), Where + ".timeout"),
            Lookback = Positive(Durations.Parse(s.Lookback, Where + ".lookback"), Where + ".lookback"),
            BinDir = s.BinDir,
            Format = format,
            Provider = s.Provider.ToLowerInvariant(),
            AccountAs = s.AccountAs,
            GpuRates = rates,
            NodeTypes = types,
            StateFile = stateFile,
        };
    }

    /// <summary>A dollar amount read as decimal text (never through floating point).</summary>
    private static decimal Dollars(string text, string key) =>
        decimal.TryParse(text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var d) && d >= 0
            ? d
            : throw new ArgumentException($"{key} must be a number >= 0 in dollars (e.g. 2.10), got '{text}'");

    private static TimeSpan Positive(TimeSpan duration, string key) =>
        duration > TimeSpan.Zero ? duration : throw new ArgumentException($"{key} must be positive, got {Durations.Format(duration)}");
}
