using System.Globalization;
using Burnrate.Alerting;
using Burnrate.Alerting.Delivery;
using Burnrate.Attribution;
using Burnrate.Ingest;
using Burnrate.Pricing;
using Burnrate.Pricing.Terms;
using Burnrate.Rating;
using Burnrate.Storage;
using Burnrate.Storage.ClickHouse;
using Burnrate.Telemetry.Mapping;
using YamlDotNet.Core;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace Burnrate.Configuration;

/// <summary>
/// The configuration file (YAML). Every key is documented in <c>docs/configuration.md</c>. A missing file is not an
/// error: defaults give an embedded DuckDB store under the data directory, the built-in catalog, loopback only.
/// </summary>
public sealed class BurnrateConfig
{
    public StorageSection Storage { get; set; } = new();
    public RatingSection Rating { get; set; } = new();
    public PricingSection Pricing { get; set; } = new();
    /// <summary>Commitments and discounts the provider's bill applies (docs/billing.md).</summary>
    public CommitmentsSection Commitments { get; set; } = new();
    public IngestSection Ingest { get; set; } = new();
    public TelemetrySection Telemetry { get; set; } = new();
    public ScrapeSection Scrape { get; set; } = new();
    /// <summary>Orchestrators polled by <c>burnrate serve</c> (docs/connectors.md).</summary>
    public ConnectorsSection Connectors { get; set; } = new();
    /// <summary>The cost series on <c>/metrics</c>: their label dimensions and the cap on how many (docs/metrics.md).</summary>
    public MetricsSection Metrics { get; set; } = new();
    /// <summary>Attribution rules; when the file has no <c>attribution</c> key, <see cref="DefaultAttribution"/> applies.</summary>
    public List<AttributionRuleSection>? Attribution { get; set; }

    /// <summary>
    /// The rules used when the file names none: the common label convention, <c>team</c>, <c>project</c> and
    /// <c>user</c> labels fill the fields a workload does not carry itself.
    /// </summary>
    public static IReadOnlyList<AttributionRule> DefaultAttribution { get; } =
    [
        new AttributionRule { Set = new Dictionary<string, string> { ["team"] = "{label:team}", ["project"] = "{label:project}", ["user"] = "{label:user}" } },
    ];
    /// <summary>Alert rules (docs/alerts.md); when the file has no <c>rules</c> key, <see cref="AlertRules.Defaults"/> apply.</summary>
    public List<RuleSection>? Rules { get; set; }
    /// <summary>How <c>serve --role ruler</c> reads the store: how often and how long after a minute's end (docs/scale-out.md).</summary>
    public RulerSection Ruler { get; set; } = new();
    /// <summary>Notification targets: each item names one of <c>alertmanager</c>, <c>webhook</c> or <c>slack</c> (docs/alerts.md, "Delivery").</summary>
    public List<NotifyTargetSection> Notify { get; set; } = [];
    /// <summary>Retries, timeouts and queue of notification delivery.</summary>
    public DeliverySection Delivery { get; set; } = new();
    /// <summary>How rule actions run: the command allowlist and dry-run (docs/alerts.md, "Actions").</summary>
    public ActionsSection Actions { get; set; } = new();
    /// <summary>API keys (docs/security.md); without keys the server serves loopback only and asks for none.</summary>
    public AuthSection Auth { get; set; } = new();
    /// <summary>HTTPS through Kestrel: a PEM certificate and key; null serves plain HTTP.</summary>
    public TlsSection? Tls { get; set; }

    /// <summary>Where the file came from, for messages.</summary>
    [YamlIgnore]
    public string? Path { get; private set; }

    public sealed class StorageSection
    {
        /// <summary>DuckDB database file; default <c>{data}/burnrate.duckdb</c>.</summary>
        public string? Duckdb { get; set; }
        /// <summary>Which store holds the ledger: <c>duckdb</c> (embedded, the default) or <c>clickhouse</c> (scale-out).</summary>
        public string Store { get; set; } = "duckdb";
        /// <summary>The ClickHouse store, used when <see cref="Store"/> is <c>clickhouse</c>.</summary>
        public ClickHouseSection? Clickhouse { get; set; }
        /// <summary>How long each resolution of the ledger is kept (docs/configuration.md, "Retention").</summary>
        public RetentionSection Retention { get; set; } = new();
    }

    /// <summary>Ages as durations (<c>35d</c>, <c>400d</c>, <c>2w</c>) or <c>forever</c>.</summary>
    public sealed class RetentionSection
    {
        /// <summary>Raw per-minute ledger rows.</summary>
        public string Minutes { get; set; } = "35d";
        /// <summary>Hourly rollups and the per-minute work counters (tokens, steps).</summary>
        public string Hours { get; set; } = "400d";
        /// <summary>Daily rollups.</summary>
        public string Days { get; set; } = "forever";
    }

    public sealed class ClickHouseSection
    {
        /// <summary>HTTP URLs of every server (<c>http://host:8123</c>); tables are created on each, queries go to the first that answers.</summary>
        public List<string> Urls { get; set; } = [];
        public string Database { get; set; } = "burnrate";
        /// <summary>The cluster (in the servers' <c>remote_servers</c>) to shard over with Distributed tables; none for one server.</summary>
        public string? Cluster { get; set; }
        /// <summary>Whether the cluster's shards have replicas (ReplicatedReplacingMergeTree; needs ZooKeeper and macros).</summary>
        public bool Replicated { get; set; }
        public string? User { get; set; }
        /// <summary>The environment variable holding the password (never the password itself in the file).</summary>
        public string? PasswordEnv { get; set; }
        public string Timeout { get; set; } = "60s";
    }

    public sealed class RatingSection
    {
        public string Grace { get; set; } = "30s";
        public string Staleness { get; set; } = "5m";
        public bool SpotFallsBackToOnDemand { get; set; } = true;
    }

    public sealed class RulerSection
    {
        /// <summary>How often the ruler looks for settled minutes.</summary>
        public string Interval { get; set; } = "5s";
        /// <summary>How long after its end a minute is evaluated (above the ingesters' <c>rating.grace</c>).</summary>
        public string Settle { get; set; } = "45s";
        /// <summary>How long a ruler's last heartbeat keeps it in the leader election; empty: three intervals.</summary>
        public string? Lease { get; set; }
        /// <summary>The most a resuming ruler evaluates of what no ruler evaluated.</summary>
        public string MaxCatchUp { get; set; } = "1h";
        /// <summary>How far back the ruler looks for evaluated minutes written again later (0s: off).</summary>
        public string LateWindow { get; set; } = "10m";
    }

    public sealed class PricingSection
    {
        /// <summary>Extra catalog files in Burnrate's catalog format; their entries override the built-in ones.</summary>
        public List<string> Catalogs { get; set; } = [];
        /// <summary>SkyPilot catalog directories or <c>vms.csv</c> files (e.g. <c>~/.sky/catalogs/v7</c>).</summary>
        public List<string> SkypilotCatalogs { get; set; } = [];
        /// <summary>Price APIs polled on schedules into the price book (docs/pricing.md, "Live price feeds").</summary>
        public List<PriceFeedSection> Feeds { get; set; } = [];
    }

    public sealed class CommitmentsSection
    {
        public List<DiscountSection> Discounts { get; set; } = [];
        public List<SavingsPlanSection> SavingsPlans { get; set; } = [];
        public List<ReservationSection> Reservations { get; set; } = [];
        public List<CreditSection> Credits { get; set; } = [];
    }

    public sealed class DiscountSection
    {
        public string Provider { get; set; } = "";
        public decimal Percent { get; set; }
        /// <summary>Capacity types covered (on_demand, spot, reserved); empty: all.</summary>
        public List<string> Capacity { get; set; } = [];
        public bool Network { get; set; } = true;
    }

    public sealed class SavingsPlanSection
    {
        public string? Name { get; set; }
        /// <summary>The provider's id of the plan (ARN), by which reconciliation finds its lines in the bill.</summary>
        public string? Id { get; set; }
        public string Provider { get; set; } = "";
        public decimal CommitmentPerHour { get; set; }
        public decimal DiscountPercent { get; set; }
        public List<string> InstanceTypes { get; set; } = [];
        public List<string> Regions { get; set; } = [];
    }

    public sealed class ReservationSection
    {
        public string Provider { get; set; } = "";
        public string InstanceType { get; set; } = "";
        public string Region { get; set; } = "";
        public int Count { get; set; }
        public decimal? PricePerHour { get; set; }
        public decimal? DiscountPercent { get; set; }
    }

    public sealed class CreditSection
    {
        public string Provider { get; set; } = "";
        public decimal Amount { get; set; }
        public DateTimeOffset From { get; set; }
        public DateTimeOffset To { get; set; }
        public string Description { get; set; } = "";
    }

    public sealed class IngestSection
    {
        /// <summary>Samples and events accepted but not yet applied before receivers answer 503.</summary>
        public long QueueCapacity { get; set; } = 2_000_000;
        /// <summary>How long input stays in the write-ahead log after its minutes are in the ledger.</summary>
        public string WalRetention { get; set; } = "1h";
        /// <summary>Whether each append to the write-ahead log waits for the disk.</summary>
        public bool WalFsync { get; set; }
    }

    public sealed class TelemetrySection
    {
        /// <summary>Metric names read as cumulative training steps; null keeps the built-in list.</summary>
        public List<string>? StepMetrics { get; set; }
        /// <summary>Metric names read as cumulative training samples; null keeps the built-in list.</summary>
        public List<string>? SampleMetrics { get; set; }
        public string DefaultProvider { get; set; } = "aws";
        public bool TimeSlicedByAllocation { get; set; } = true;
        public string PodStaleness { get; set; } = "2m";
    }

    public sealed class MetricsSection
    {
        /// <summary>Label dimensions of the cost series; null keeps the default (team, cloud).</summary>
        public List<string>? CostLabels { get; set; }
        /// <summary>Distinct label sets before new ones are folded into <c>__other__</c>.</summary>
        public int MaxSeries { get; set; } = 1000;
    }

    public sealed class ScrapeSection
    {
        public string Interval { get; set; } = "15s";
        public string Timeout { get; set; } = "10s";
        public List<ScrapeJobSection> Jobs { get; set; } = [];
    }

    public sealed class ScrapeJobSection
    {
        public string Job { get; set; } = "";
        /// <summary><c>host:port</c> of each target, or a full URL.</summary>
        public List<string> Targets { get; set; } = [];
        public string MetricsPath { get; set; } = "/metrics";
        public string? Interval { get; set; }
        public string? Timeout { get; set; }
    }

    public sealed class AttributionRuleSection
    {
        public Dictionary<string, string> Match { get; set; } = [];
        public Dictionary<string, string> Set { get; set; } = [];
        public bool Override { get; set; }
    }

    public sealed class NotifyTargetSection
    {
        /// <summary>Alertmanager base URL; alerts are posted to <c>{url}/api/v2/alerts</c>.</summary>
        public string? Alertmanager { get; set; }
        /// <summary>Generic JSON webhook URL.</summary>
        public string? Webhook { get; set; }
        /// <summary>Slack incoming-webhook URL (holds a token: never logged).</summary>
        public string? Slack { get; set; }
        /// <summary>The name metrics and the API show; default <c>{kind}-{index}</c>.</summary>
        public string? Name { get; set; }
        public bool SendResolved { get; set; } = true;
    }

    public sealed class DeliverySection
    {
        public int Attempts { get; set; } = 5;
        public string InitialBackoff { get; set; } = "1s";
        public string MaxBackoff { get; set; } = "1m";
        public string Timeout { get; set; } = "10s";
        public int QueueCapacity { get; set; } = 10_000;
        public string ResendInterval { get; set; } = "1m";
        /// <summary>Burnrate's URL as users reach it, for <c>generatorURL</c> and links.</summary>
        public string? ExternalUrl { get; set; }
    }

    public sealed class ActionsSection
    {
        public List<string> Allow { get; set; } = [];
        public bool DryRun { get; set; } = true;
        public string Timeout { get; set; } = "30s";
    }

    /// <summary>The notification targets and delivery settings the file describes.</summary>
    public DeliveryOptions ToDeliveryOptions()
    {
        var targets = new List<NotifyTarget>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < Notify.Count; i++)
        {
            var item = Notify[i];
            var where = string.Create(CultureInfo.InvariantCulture, $"notify[{i}]");
            (NotifyKind Kind, string Key, string Url)[] given =
            [
                .. item.Alertmanager is null ? [] : new[] { (NotifyKind.Alertmanager, "alertmanager", item.Alertmanager) },
                .. item.Webhook is null ? [] : new[] { (NotifyKind.Webhook, "webhook", item.Webhook) },
                .. item.Slack is null ? [] : new[] { (NotifyKind.Slack, "slack", item.Slack) },
            ];
            if (given.Length != 1)
                throw new ArgumentException($"{where} must name exactly one of alertmanager, webhook or slack, got {given.Length}");
            var (kind, key, text) = given[0];
            // The message never repeats the URL: a Slack or webhook URL carries its token.
            if (!Uri.TryCreate(text, UriKind.Absolute, out var url) || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps))
                throw new ArgumentException($"{where}.{key} is not an http(s) URL");
            var name = string.IsNullOrWhiteSpace(item.Name) ? string.Create(CultureInfo.InvariantCulture, $"{key}-{i}") : item.Name;
            if (!names.Add(name))
                throw new ArgumentException($"{where}.name '{name}' is used by another target");
            targets.Add(new NotifyTarget(name, kind, url, item.SendResolved));
        }
        if (Delivery.Attempts < 1)
            throw new ArgumentException($"delivery.attempts must be at least 1, got {Delivery.Attempts}");
        if (Delivery.QueueCapacity < 1)
            throw new ArgumentException($"delivery.queue_capacity must be at least 1, got {Delivery.QueueCapacity}");
        Uri? external = null;
        if (Delivery.ExternalUrl is not null && (!Uri.TryCreate(Delivery.ExternalUrl, UriKind.Absolute, out external) || (external.Scheme != Uri.UriSchemeHttp && external.Scheme != Uri.UriSchemeHttps)))
            throw new ArgumentException($"delivery.external_url is not an http(s) URL: '{Delivery.ExternalUrl}'");
        var initial = Positive(Durations.Parse(Delivery.InitialBackoff, "delivery.initial_backoff"), "delivery.initial_backoff");
        var max = Positive(Durations.Parse(Delivery.MaxBackoff, "delivery.max_backoff"), "delivery.max_backoff");
        if (max < initial)
            throw new ArgumentException($"delivery.max_backoff ({Durations.Format(max)}) is below delivery.initial_backoff ({Durations.Format(initial)})");
        return new()
        {
            Targets = targets,
            Attempts = Delivery.Attempts,
            InitialBackoff = initial,
            MaxBackoff = max,
            Timeout = Positive(Durations.Parse(Delivery.Timeout, "delivery.timeout"), "delivery.timeout"),
            QueueCapacity = Delivery.QueueCapacity,
            ResendInterval = Positive(Durations.Parse(Delivery.ResendInterval, "delivery.resend_interval"), "delivery.resend_interval"),
            ExternalUrl = external,
        };
    }

    /// <summary>The action settings the file describes.</summary>
    public ActionOptions ToActionOptions()
    {
        for (var i = 0; i < Actions.Allow.Count; i++)
        {
            var command = Actions.Allow[i];
            if (string.IsNullOrWhiteSpace(command) || command.Any(char.IsWhiteSpace))
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"actions.allow[{i}] must be one command name or path without spaces, got '{command}'"));
        }
        return new()
        {
            Allow = [.. Actions.Allow],
            DryRun = Actions.DryRun,
            Timeout = Positive(Durations.Parse(Actions.Timeout, "actions.timeout"), "actions.timeout"),
        };
    }

    /// <summary>
    /// The API keys the file describes; secrets named by <c>env</c> are read from the environment now, so a missing
    /// variable is an error naming the key.
    /// </summary>
    public IReadOnlyList<ApiKey> ToApiKeys(Func<string, string?>? environment = null) => ApiKeys.From(Auth, environment);

    /// <summary>The certificate and key files of <c>tls</c>, or null for plain HTTP; both must be given and exist.</summary>
    public (string Certificate, string Key)? ToTlsFiles()
    {
        if (Tls is null)
            return null;
        if (string.IsNullOrWhiteSpace(Tls.Certificate) || string.IsNullOrWhiteSpace(Tls.Key))
            throw new ArgumentException("tls needs both certificate (a PEM file) and key (its PEM private key)");
        if (!File.Exists(Tls.Certificate))
            throw new ArgumentException($"tls.certificate: '{Tls.Certificate}' does not exist");
        if (!File.Exists(Tls.Key))
            throw new ArgumentException($"tls.key: '{Tls.Key}' does not exist");
        return (Tls.Certificate, Tls.Key);
    }

    /// <summary>The price feeds the file describes; <paramref name="environment"/> reads the secrets they name (null: none read).</summary>
    public IReadOnlyList<Pricing.Feeds.PriceFeedOptions> ToPriceFeedOptions(Func<string, string?>? environment = null) =>
        PriceFeedSection.ToOptions(Pricing.Feeds, environment);

    /// <summary>The rating options the file describes.</summary>
    public RatingOptions ToRatingOptions() => new()
    {
        Grace = Durations.Parse(Rating.Grace, "rating.grace"),
        Staleness = Durations.Parse(Rating.Staleness, "rating.staleness"),
        SpotFallsBackToOnDemand = Rating.SpotFallsBackToOnDemand,
        CostSeries = ToCostSeriesOptions(),
        Terms = ToPricingTerms(),
    };

    /// <summary>The ruler's options the file describes (<c>ruler.interval</c>, <c>settle</c>, <c>lease</c>, <c>max_catch_up</c>, <c>late_window</c>).</summary>
    public AlertRulerOptions ToRulerOptions()
    {
        var interval = Durations.Parse(Ruler.Interval, "ruler.interval");
        if (interval <= TimeSpan.Zero)
            throw new ArgumentException($"ruler.interval: '{Ruler.Interval}' must be more than 0s");
        TimeSpan? lease = string.IsNullOrWhiteSpace(Ruler.Lease) ? null : Durations.Parse(Ruler.Lease, "ruler.lease");
        if (lease is { } l && l <= interval)
            throw new ArgumentException($"ruler.lease: '{Ruler.Lease}' must be longer than ruler.interval ({Ruler.Interval})");
        var catchUp = Durations.Parse(Ruler.MaxCatchUp, "ruler.max_catch_up");
        if (catchUp < TimeSpan.FromMinutes(1))
            throw new ArgumentException($"ruler.max_catch_up: '{Ruler.MaxCatchUp}' must be at least 1m");
        return new AlertRulerOptions
        {
            Interval = interval,
            Settle = Durations.Parse(Ruler.Settle, "ruler.settle"),
            Lease = lease,
            MaxCatchUp = catchUp,
            LateWindow = Durations.Parse(Ruler.LateWindow, "ruler.late_window"),
        };
    }

    /// <summary>The commitments and discounts the file describes; throws <see cref="ArgumentException"/> naming a wrong entry.</summary>
    public PricingTerms ToPricingTerms()
    {
        var c = Commitments;
        if (c.Discounts.Count == 0 && c.SavingsPlans.Count == 0 && c.Reservations.Count == 0 && c.Credits.Count == 0)
            return PricingTerms.None;
        static string Provider(string provider, string where) =>
            string.IsNullOrWhiteSpace(provider) ? throw new ArgumentException($"{where}.provider is required (aws, gcp, azure, ...)") : provider.Trim().ToLowerInvariant();
        static void Percent(decimal value, string where)
        {
            if (value <= 0m || value >= 100m)
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{where} must be above 0 and below 100, got {value}"));
        }

        var discounts = new List<NegotiatedDiscount>();
        for (var i = 0; i < c.Discounts.Count; i++)
        {
            var d = c.Discounts[i];
            var where = string.Create(CultureInfo.InvariantCulture, $"commitments.discounts[{i}]");
            Percent(d.Percent, where + ".percent");
            var capacities = new List<CapacityType>();
            foreach (var name in d.Capacity)
            {
                if (!CapacityTypes.TryParse(name, out var capacity))
                    throw new ArgumentException($"{where}.capacity: '{name}' is not on_demand, spot or reserved");
                capacities.Add(capacity);
            }
            discounts.Add(new NegotiatedDiscount(Provider(d.Provider, where), d.Percent, capacities, d.Network));
        }

        var plans = new List<SavingsPlan>();
        for (var i = 0; i < c.SavingsPlans.Count; i++)
        {
            var p = c.SavingsPlans[i];
            var where = string.Create(CultureInfo.InvariantCulture, $"commitments.savings_plans[{i}]");
            if (p.CommitmentPerHour <= 0m)
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{where}.commitment_per_hour must be positive (dollars per hour), got {p.CommitmentPerHour}"));
            Percent(p.DiscountPercent, where + ".discount_percent");
            var name = string.IsNullOrWhiteSpace(p.Name) ? string.Create(CultureInfo.InvariantCulture, $"plan-{i + 1}") : p.Name.Trim();
            if (plans.Any(x => x.Name == name))
                throw new ArgumentException($"{where}.name: '{name}' is the name of another plan");
            plans.Add(new SavingsPlan(name, Provider(p.Provider, where), p.CommitmentPerHour, p.DiscountPercent, p.InstanceTypes, p.Regions,
                string.IsNullOrWhiteSpace(p.Id) ? null : p.Id.Trim()));
        }

        var reservations = new List<Reservation>();
        for (var i = 0; i < c.Reservations.Count; i++)
        {
            var r = c.Reservations[i];
            var where = string.Create(CultureInfo.InvariantCulture, $"commitments.reservations[{i}]");
            if (string.IsNullOrWhiteSpace(r.InstanceType))
                throw new ArgumentException($"{where}.instance_type is required");
            if (r.Count < 1)
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{where}.count must be at least 1, got {r.Count}"));
            if ((r.PricePerHour is null) == (r.DiscountPercent is null))
                throw new ArgumentException($"{where} needs exactly one of price_per_hour (the reserved node's effective $/h) or discount_percent");
            if (r.PricePerHour is <= 0m)
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{where}.price_per_hour must be positive, got {r.PricePerHour}"));
            if (r.DiscountPercent is { } dp)
                Percent(dp, where + ".discount_percent");
            reservations.Add(new Reservation(Provider(r.Provider, where), r.InstanceType.Trim(), r.Region.Trim(), r.Count, r.PricePerHour, r.DiscountPercent));
        }

        var credits = new List<Credit>();
        for (var i = 0; i < c.Credits.Count; i++)
        {
            var r = c.Credits[i];
            var where = string.Create(CultureInfo.InvariantCulture, $"commitments.credits[{i}]");
            if (r.Amount <= 0m)
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{where}.amount must be positive (dollars), got {r.Amount}"));
            if (r.To <= r.From)
                throw new ArgumentException($"{where}: to must be after from");
            credits.Add(new Credit(Provider(r.Provider, where), r.Amount, r.From, r.To, r.Description));
        }
        return new PricingTerms { Discounts = discounts, SavingsPlans = plans, Reservations = reservations, Credits = credits };
    }

    /// <summary>The labels and cap of the cost series on <c>/metrics</c> the file describes.</summary>
    public CostSeriesOptions ToCostSeriesOptions()
    {
        if (Metrics.MaxSeries < 1)
            throw new ArgumentException($"metrics.max_series must be at least 1, got {Metrics.MaxSeries}");
        if (Metrics.CostLabels is null)
            return new() { MaxSeries = Metrics.MaxSeries };
        var allowed = string.Join(", ", CostSeriesOptions.Allowed.Select(d => d.ToName()));
        var labels = new List<CostDimension>();
        for (var i = 0; i < Metrics.CostLabels.Count; i++)
        {
            var name = Metrics.CostLabels[i];
            if (!CostDimensions.TryParse(name, out var dimension) || !CostSeriesOptions.Allowed.Contains(dimension))
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"metrics.cost_labels[{i}]: '{name}' is not a bounded dimension; use {allowed}"));
            if (labels.Contains(dimension))
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"metrics.cost_labels[{i}]: '{name}' is listed twice"));
            labels.Add(dimension);
        }
        return new() { Labels = labels, MaxSeries = Metrics.MaxSeries };
    }

    /// <summary>The ingest queue and write-ahead log settings the file describes.</summary>
    public IngestOptions ToIngestOptions()
    {
        if (Ingest.QueueCapacity < 1)
            throw new ArgumentException($"ingest.queue_capacity must be at least 1, got {Ingest.QueueCapacity}");
        return new() { QueueCapacity = Ingest.QueueCapacity, WalRetention = Durations.Parse(Ingest.WalRetention, "ingest.wal_retention") };
    }

    /// <summary>The telemetry mapper settings the file describes.</summary>
    public TelemetryMapperOptions ToMapperOptions()
    {
        var defaults = new TelemetryMapperOptions();
        return new()
        {
            StepMetrics = Telemetry.StepMetrics ?? defaults.StepMetrics,
            SampleMetrics = Telemetry.SampleMetrics ?? defaults.SampleMetrics,
            DefaultProvider = Telemetry.DefaultProvider.ToLowerInvariant(),
            TimeSlicedByAllocation = Telemetry.TimeSlicedByAllocation,
            PodStaleness = Durations.Parse(Telemetry.PodStaleness, "telemetry.pod_staleness"),
        };
    }

    /// <summary>The scrape targets the file describes, one per URL.</summary>
    public IReadOnlyList<ScrapeTarget> ToScrapeTargets()
    {
        var interval = Positive(Durations.Parse(Scrape.Interval, "scrape.interval"), "scrape.interval");
        // A zero timeout would not mean "no timeout": every scrape would fail at once.
        var timeout = Positive(Durations.Parse(Scrape.Timeout, "scrape.timeout"), "scrape.timeout");
        var targets = new List<ScrapeTarget>();
        for (var i = 0; i < Scrape.Jobs.Count; i++)
        {
            var job = Scrape.Jobs[i];
            var where = $"scrape.jobs[{i}]";
            if (string.IsNullOrWhiteSpace(job.Job))
                throw new ArgumentException($"{where}.job is required");
            if (job.Targets.Count == 0)
                throw new ArgumentException($"{where}.targets is empty: list host:port of each target");
            var jobInterval = job.Interval is null ? interval : Positive(Durations.Parse(job.Interval, where + ".interval"), where + ".interval");
            var jobTimeout = job.Timeout is null ? timeout : Positive(Durations.Parse(job.Timeout, where + ".timeout"), where + ".timeout");
            if (jobTimeout > jobInterval)
                jobTimeout = jobInterval; // as Prometheus: a scrape never outlives its interval
            foreach (var target in job.Targets)
            {
                var text = target.Contains("://", StringComparison.Ordinal) ? target : "http://" + target + (job.MetricsPath.StartsWith('/') ? job.MetricsPath : "/" + job.MetricsPath);
                if (!Uri.TryCreate(text, UriKind.Absolute, out var url) || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps))
                    throw new ArgumentException($"{where}.targets: '{target}' is not host:port or an http(s) URL");
                targets.Add(new ScrapeTarget(job.Job, url, jobInterval, jobTimeout));
            }
        }
        return targets;
    }

    private static TimeSpan Positive(TimeSpan duration, string key) =>
        duration > TimeSpan.Zero ? duration : throw new ArgumentException($"{key} must be positive, got {Durations.Format(duration)}");

    /// <summary>The alert rules the file describes (the built-in defaults when it has no <c>rules</c> key).</summary>
    public IReadOnlyList<AlertRule> ToAlertRules()
    {
        if (Rules is null)
            return AlertRules.Defaults;
        var rules = Rules.Select((r, i) => r.ToAlertRule(i)).ToList();
        for (var i = 0; i < rules.Count; i++)
        {
            var first = rules.FindIndex(r => r.Name == rules[i].Name);
            if (first != i)
                throw new ArgumentException($"rules[{i}].name: '{rules[i].Name}' is also the name of rules[{first}]");
        }
        return rules;
    }

    /// <summary>The attribution rules the file describes.</summary>
    public AttributionRules ToAttributionRules() =>
        Attribution is null
            ? new(DefaultAttribution)
            : new(Attribution.Select(r => new AttributionRule { Match = r.Match, Set = r.Set, Override = r.Override }));

    /// <summary>
    /// The ClickHouse store's options when <c>storage.store</c> is <c>clickhouse</c>, else null (the embedded store).
    /// The password is read from the environment variable <c>storage.clickhouse.password_env</c> names.
    /// </summary>
    public ClickHouseOptions? ToClickHouseOptions(Func<string, string?>? environment = null)
    {
        var store = Storage.Store?.Trim().ToLowerInvariant();
        if (store is null or "" or "duckdb")
            return null;
        if (store != "clickhouse")
            throw new ArgumentException($"storage.store: '{Storage.Store}' is not a store; use duckdb or clickhouse");
        var section = Storage.Clickhouse ?? throw new ArgumentException("storage.store is clickhouse but storage.clickhouse is missing (urls, database, cluster)");
        var urls = new List<Uri>();
        foreach (var url in section.Urls)
        {
            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri))
                throw new ArgumentException($"storage.clickhouse.urls: '{url}' is not a URL");
            urls.Add(uri);
        }
        string? password = null;
        if (!string.IsNullOrWhiteSpace(section.PasswordEnv))
            password = (environment ?? Environment.GetEnvironmentVariable)(section.PasswordEnv) ?? throw new ArgumentException($"storage.clickhouse.password_env: the environment variable {section.PasswordEnv} is not set");
        var options = new ClickHouseOptions
        {
            Urls = urls,
            Database = section.Database,
            Cluster = string.IsNullOrWhiteSpace(section.Cluster) ? null : section.Cluster,
            Replicated = section.Replicated,
            User = section.User,
            Password = password,
            Timeout = Positive(Durations.Parse(section.Timeout, "storage.clickhouse.timeout"), "storage.clickhouse.timeout"),
        };
        options.Validate();
        return options;
    }

    /// <summary>The retention policy of <c>storage.retention</c> (minutes 35 days, hours 400 days, days forever by default).</summary>
    public RetentionPolicy ToRetentionPolicy()
    {
        var section = Storage.Retention ?? new RetentionSection();
        var policy = new RetentionPolicy
        {
            Minutes = Age(section.Minutes, "storage.retention.minutes"),
            Hours = Age(section.Hours, "storage.retention.hours"),
            Days = Age(section.Days, "storage.retention.days"),
        };
        policy.Validate();
        return policy;

        static TimeSpan? Age(string? text, string key) =>
            string.IsNullOrWhiteSpace(text) || text.Trim().Equals("forever", StringComparison.OrdinalIgnoreCase) ? null : Durations.Parse(text, key);
    }

    /// <summary>The DuckDB file: the configured one, else <c>{dataDirectory}/burnrate.duckdb</c>.</summary>
    public string DuckDbPath(string dataDirectory) =>
        string.IsNullOrWhiteSpace(Storage.Duckdb) ? System.IO.Path.Combine(dataDirectory, "burnrate.duckdb") : Storage.Duckdb;

    /// <summary>Parses YAML text. Throws <see cref="ConfigException"/> naming the line and key that is wrong.</summary>
    public static BurnrateConfig Parse(string yaml, string? path = null)
    {
        var deserializer = new DeserializerBuilder()
            .WithNamingConvention(UnderscoredNamingConvention.Instance)
            .Build();
        BurnrateConfig config;
        try
        {
            config = deserializer.Deserialize<BurnrateConfig?>(yaml) ?? new BurnrateConfig();
        }
        catch (YamlException e)
        {
            var message = e.InnerException?.Message ?? e.Message;
            throw new ConfigException($"{path ?? "config"}:{e.Start.Line}:{e.Start.Column}: {message}", e);
        }
        config.Path = path;
        try
        {
            _ = config.ToRatingOptions();
            _ = config.ToRulerOptions();
            _ = config.ToAttributionRules();
            _ = config.ToIngestOptions();
            _ = config.ToMapperOptions();
            _ = config.ToScrapeTargets();
            _ = config.Connectors.ToSlurmOptions();
            _ = config.Connectors.ToSkyPilotOptions(_ => "set");
            _ = config.ToDeliveryOptions();
            _ = config.ToActionOptions();
            // Checked without reading the environment: verbs other than serve do not need the secrets.
            _ = config.ToApiKeys(_ => "set");
            _ = config.ToTlsFiles();
            _ = config.ToPriceFeedOptions();
            _ = config.ToClickHouseOptions(_ => "set");
            _ = config.ToRetentionPolicy();
            var actions = config.ToActionOptions();
            var rules = config.ToAlertRules();
            for (var i = 0; i < rules.Count; i++)
            {
                if (rules[i].Action is { } action && ActionRunner.Validate(action, actions) is { } problem)
                    throw new ArgumentException($"rules[{i}].action: {problem}");
            }
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            throw new ConfigException($"{path ?? "config"}: {e.Message}", e);
        }
        return config;
    }

    /// <summary>Loads a file; a null path gives the defaults. A path that does not exist is an error.</summary>
    public static BurnrateConfig Load(string? path)
    {
        if (path is null)
            return new BurnrateConfig();
        if (!File.Exists(path))
            throw new ConfigException($"config file '{path}' does not exist.");
        return Parse(File.ReadAllText(path), path);
    }
}

/// <summary>A configuration file that cannot be used; the message says where and why.</summary>
public sealed class ConfigException : Exception
{
    public ConfigException(string message) : base(message) { }
    public ConfigException(string message, Exception inner) : base(message, inner) { }
    public ConfigException() { }
}
