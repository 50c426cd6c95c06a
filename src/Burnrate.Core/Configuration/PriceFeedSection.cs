using System.Globalization;
using Burnrate.Pricing.Feeds;

namespace Burnrate.Configuration;

/// <summary>One item of <c>pricing.feeds</c>: a price API polled on a schedule (docs/pricing.md, "Live price feeds").</summary>
public sealed class PriceFeedSection
{
    /// <summary>Shown in metrics and the API; default <c>{kind}-{index}</c>.</summary>
    public string? Name { get; set; }
    /// <summary><c>aws_spot</c>, <c>azure_retail</c>, <c>gcp_billing</c> or <c>skypilot</c>.</summary>
    public string? Kind { get; set; }
    /// <summary>Time between polls; default 60s (1h for <c>gcp_billing</c>).</summary>
    public string? Interval { get; set; }
    /// <summary>Longest a poll may take; default 30s.</summary>
    public string? Timeout { get; set; }
    /// <summary>The API's base URL; default the provider's public one.</summary>
    public string? Endpoint { get; set; }
    public List<string> Regions { get; set; } = [];
    public List<string> InstanceTypes { get; set; } = [];
    /// <summary>AWS: operating systems to ask spot prices for.</summary>
    public List<string>? ProductDescriptions { get; set; }
    /// <summary>AWS: <c>default</c> (the SDK's chain: environment, profile, instance role) or <c>dummy</c> (a local endpoint only).</summary>
    public string? Credentials { get; set; }
    /// <summary>Azure: the API version.</summary>
    public string? ApiVersion { get; set; }
    /// <summary>GCP: the billing service id.</summary>
    public string? Service { get; set; }
    /// <summary>GCP: the environment variable holding the API key (the key itself never goes in the file).</summary>
    public string? ApiKeyEnv { get; set; }
    /// <summary>SkyPilot: <c>vms.csv</c> files or directories.</summary>
    public List<string> Paths { get; set; } = [];

    private static readonly Dictionary<PriceFeedKind, string[]> s_keysOf = new()
    {
        [PriceFeedKind.AwsSpot] = ["endpoint", "regions", "instance_types", "product_descriptions", "credentials"],
        [PriceFeedKind.AzureRetail] = ["endpoint", "regions", "instance_types", "api_version"],
        [PriceFeedKind.GcpBilling] = ["endpoint", "regions", "instance_types", "service", "api_key_env"],
        [PriceFeedKind.SkyPilot] = ["paths", "regions", "instance_types"],
    };

    /// <summary>
    /// The feeds <paramref name="sections"/> describe. Errors name the item and key (<c>pricing.feeds[1].interval: ...</c>).
    /// </summary>
    /// <param name="sections">The items of <c>pricing.feeds</c>.</param>
    /// <param name="environment">Reads environment variables (the GCP API key); null reads none and leaves the key unset.</param>
    /// <exception cref="ArgumentException">An item is invalid.</exception>
    public static IReadOnlyList<PriceFeedOptions> ToOptions(IReadOnlyList<PriceFeedSection> sections, Func<string, string?>? environment = null)
    {
        ArgumentNullException.ThrowIfNull(sections);
        var feeds = new List<PriceFeedOptions>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < sections.Count; i++)
        {
            var s = sections[i] ?? throw new ArgumentException(Where(i) + " is empty: give at least kind");
            feeds.Add(s.ToOptions(i, environment));
            if (!names.Add(feeds[^1].Name))
                throw new ArgumentException($"{Where(i)}.name: '{feeds[^1].Name}' is used by another feed");
        }
        return feeds;
    }

    private static string Where(int index) => string.Create(CultureInfo.InvariantCulture, $"pricing.feeds[{index}]");

    private PriceFeedOptions ToOptions(int index, Func<string, string?>? environment)
    {
        var where = Where(index);
        if (string.IsNullOrWhiteSpace(Kind))
            throw new ArgumentException($"{where}.kind is required: one of {string.Join(", ", PriceFeedKinds.Names)}");
        if (!PriceFeedKinds.TryParse(Kind, out var kind))
            throw new ArgumentException($"{where}.kind: '{Kind}' is not one of {string.Join(", ", PriceFeedKinds.Names)}");
        var used = s_keysOf[kind];
        void Refuse(bool given, string key)
        {
            if (given && !used.Contains(key))
                throw new ArgumentException($"{where}.{key} does not apply to kind {Kind} (its keys: name, kind, interval, timeout, {string.Join(", ", used)})");
        }
        Refuse(Endpoint is not null, "endpoint");
        Refuse(Regions.Count > 0, "regions");
        Refuse(InstanceTypes.Count > 0, "instance_types");
        Refuse(ProductDescriptions is not null, "product_descriptions");
        Refuse(Credentials is not null, "credentials");
        Refuse(ApiVersion is not null, "api_version");
        Refuse(Service is not null, "service");
        Refuse(ApiKeyEnv is not null, "api_key_env");
        Refuse(Paths.Count > 0, "paths");

        var name = string.IsNullOrWhiteSpace(Name) ? string.Create(CultureInfo.InvariantCulture, $"{Kind}-{index}") : Name.Trim();
        if (name.Any(c => char.IsControl(c) || c == '"' || c == '\\'))
            throw new ArgumentException($"{where}.name: '{name}' may not hold quotes, backslashes or control characters");
        var interval = Durations.Parse(Interval ?? Durations.Format(kind.DefaultInterval()), where + ".interval");
        if (interval < TimeSpan.FromSeconds(1))
            throw new ArgumentException($"{where}.interval must be at least 1s, got '{Interval}'");
        var timeout = Durations.Parse(Timeout ?? "30s", where + ".timeout");
        if (timeout <= TimeSpan.Zero)
            throw new ArgumentException($"{where}.timeout must be positive, got '{Timeout}'");

        Uri? endpoint = null;
        if (Endpoint is not null && (!Uri.TryCreate(Endpoint, UriKind.Absolute, out endpoint) || (endpoint.Scheme != Uri.UriSchemeHttp && endpoint.Scheme != Uri.UriSchemeHttps)))
            throw new ArgumentException($"{where}.endpoint: '{Endpoint}' is not an http(s) URL");
        if ((kind is PriceFeedKind.AwsSpot or PriceFeedKind.AzureRetail) && Regions.Count == 0)
            throw new ArgumentException($"{where}.regions is required for kind {Kind}: list the regions to ask prices for (e.g. [{(kind == PriceFeedKind.AwsSpot ? "us-east-1" : "eastus")}])");
        for (var r = 0; r < Regions.Count; r++)
        {
            if (string.IsNullOrWhiteSpace(Regions[r]) || Regions[r].Any(c => char.IsWhiteSpace(c) || c == '\''))
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{where}.regions[{r}]: '{Regions[r]}' is not a region name"));
        }
        for (var t = 0; t < InstanceTypes.Count; t++)
        {
            if (string.IsNullOrWhiteSpace(InstanceTypes[t]) || InstanceTypes[t].Any(c => char.IsWhiteSpace(c) || c == '\''))
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{where}.instance_types[{t}]: '{InstanceTypes[t]}' is not an instance type"));
        }

        var dummy = false;
        if (Credentials is not null)
        {
            dummy = Credentials switch
            {
                "default" => false,
                "dummy" => true,
                _ => throw new ArgumentException($"{where}.credentials: '{Credentials}' is not one of default, dummy"),
            };
            if (dummy && endpoint is null)
                throw new ArgumentException($"{where}.credentials: dummy is only for a local endpoint; set endpoint too");
        }
        if (ProductDescriptions is { Count: 0 })
            throw new ArgumentException($"{where}.product_descriptions is empty: leave it out for Linux/UNIX");

        string? apiKey = null;
        if (ApiKeyEnv is not null)
        {
            if (string.IsNullOrWhiteSpace(ApiKeyEnv))
                throw new ArgumentException($"{where}.api_key_env is empty: name the environment variable holding the key");
            if (environment is not null)
            {
                apiKey = environment(ApiKeyEnv);
                if (string.IsNullOrEmpty(apiKey))
                    throw new ArgumentException($"{where}.api_key_env: the environment variable {ApiKeyEnv} is not set");
            }
        }
        if (kind == PriceFeedKind.SkyPilot && Paths.Count == 0)
            throw new ArgumentException($"{where}.paths is required for kind skypilot: list vms.csv files or directories");
        if (ApiVersion is not null && string.IsNullOrWhiteSpace(ApiVersion))
            throw new ArgumentException($"{where}.api_version is empty");
        if (Service is not null && string.IsNullOrWhiteSpace(Service))
            throw new ArgumentException($"{where}.service is empty");

        var options = new PriceFeedOptions
        {
            Name = name,
            Kind = kind,
            Interval = interval,
            Timeout = timeout,
            Endpoint = endpoint,
            Regions = [.. Regions],
            InstanceTypes = [.. InstanceTypes],
            DummyCredentials = dummy,
            ApiKey = apiKey,
            Paths = [.. Paths],
        };
        if (ProductDescriptions is not null)
            options = options with { ProductDescriptions = [.. ProductDescriptions] };
        if (ApiVersion is not null)
            options = options with { ApiVersion = ApiVersion };
        if (Service is not null)
            options = options with { Service = Service };
        return options;
    }
}
