using System.CommandLine;
using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Burnrate.Alerting;
using Burnrate.Alerting.Delivery;
using Burnrate.Configuration;
using Burnrate.Connectors;
using Burnrate.Connectors.SkyPilot;
using Burnrate.Connectors.Slurm;
using Burnrate.Ingest;
using Burnrate.Pricing;
using Burnrate.Pricing.Feeds;
using Burnrate.Rating;
using Burnrate.Server;
using Burnrate.Telemetry.Mapping;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Burnrate.Cli.Verbs;

/// <summary>
/// <c>burnrate serve</c>: the live server. Replays the write-ahead log, then receives remote write, OTLP, events and
/// scraped pages through one <see cref="IngestPipeline"/>, rates the minutes that have closed every
/// <see cref="RatingInterval"/> on the injected clock, and serves the cost API, the burn rate, <c>/metrics</c> and
/// health. On shutdown it stops receiving, applies what is queued and rates what is closed once more.
/// </summary>
internal static partial class ServeCommand
{
    /// <summary>How often closed minutes are rated and written.</summary>
    public static readonly TimeSpan RatingInterval = TimeSpan.FromSeconds(5);

    /// <summary>How often the alert rules judged from the live burn are evaluated when no input arrives.</summary>
    public static readonly TimeSpan LiveAlertInterval = TimeSpan.FromSeconds(1);

    public static Command Create(CliServices services)
    {
        var listen = new Option<string>("--listen")
        {
            Description = "Address to listen on (port 0 picks a free one); other than loopback (0.0.0.0, [::]) only when the config has auth.keys (docs/security.md)",
            HelpName = "ADDR",
            DefaultValueFactory = _ => "127.0.0.1:9840",
        };
        var role = new Option<string>("--role")
        {
            Description = "all: receive, rate, alert and serve (one process); for a ClickHouse ledger shared by several processes (docs/scale-out.md): ingest: receive and rate, no alert evaluation; ruler: evaluate the alert rules from the store's settled minutes and deliver them, no receivers; api: serve the ledger only",
            HelpName = "ROLE",
            DefaultValueFactory = _ => "all",
        };
        role.AcceptOnlyFromAmong("all", "ingest", "ruler", "api");
        var command = new Command("serve", "Receive live telemetry and events, rate them per minute and serve the ledger: POST /api/v1/write (Prometheus remote write 1.0/2.0), POST /v1/metrics (OTLP/HTTP), POST /api/v1/events, scrape targets from the config; GET /api/v1/costs, /api/v1/burn, /metrics, /healthz") { listen, role };
        BurnrateCli.SetGuardedAction(command, services, async (parse, cancellationToken) =>
        {
            var dataDirectory = BurnrateCli.GetLedgerLocation(parse); // also validates the config file
            var config = LoadConfig(BurnrateCli.GetConfigFile(parse));
            if (parse.GetValue(role) == "api")
                return await ServeApiOnlyAsync(services, config, dataDirectory, parse.GetValue(listen)!, cancellationToken).ConfigureAwait(false);
            if (parse.GetValue(role) == "ruler")
                return await ServeRulerAsync(services, config, dataDirectory, parse.GetValue(listen)!, cancellationToken).ConfigureAwait(false);
            // --role ingest: the single process without alert evaluation or delivery (the ruler evaluates from the store).
            var ingestRole = parse.GetValue(role) == "ingest" ? new ServerRole("ingest", EvaluatesAlerts: false) : null;
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(CliServices.LedgerPath(dataDirectory)))!);
            var logger = new StderrLogger(services.Error);
            var (book, rateCard) = PricingSetup.Load(config, logger);
            // Live price feeds (pricing.feeds) write into the same book the rating engine reads.
            using var feedHttp = new HttpClient { Timeout = Timeout.InfiniteTimeSpan }; // each poll has its own timeout
            var feedOptions = LoadFeeds(config, services.GetEnvironmentVariable);
            // What the feeds wrote survives a restart ({data}/prices/feeds.jsonl): the log's replay re-rates at those prices,
            // and a feed failing at start keeps its last good ones. Kept: the log's retention and a day more.
            using var feedJournal = feedOptions.Count == 0 ? null : FeedPriceJournal.Open(Path.Combine(dataDirectory, "prices", "feeds.jsonl"), book,
                services.Time.GetUtcNow(), config.ToIngestOptions().WalRetention + TimeSpan.FromDays(1), logger);
            if (feedJournal is { Restored: > 0 })
                await services.Out.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"restored {feedJournal.Restored} feed prices from {Path.Combine(dataDirectory, "prices", "feeds.jsonl")}")).ConfigureAwait(false);
            using var feeds = PriceFeeds.Create(feedOptions, (IPriceBook?)feedJournal ?? book, feedHttp, services.Time, logger);
            var ratingOptions = config.ToRatingOptions();
            // storage.store: clickhouse puts the ledger in ClickHouse (docs/scale-out.md); the write-ahead log stays local.
            var (opened, ledger) = await BurnrateCli.OpenConfiguredStoreAsync(services, config, dataDirectory, logger, cancellationToken).ConfigureAwait(false);
            await using var store = opened;
            var engine = new RatingEngine(book, rateCard, config.ToAttributionRules(), ratingOptions)
            {
                // What earlier bills taught (docs/billing.md#calibration), before the log is replayed and rated.
                Calibration = await Billing.Calibrations.LoadAsync(store, cancellationToken).ConfigureAwait(false),
            };
            using var pipeline = new CostPipeline(engine, store, ratingOptions, logger);
            // Every alert is a log line, and goes to the configured targets (Alertmanager, webhooks, Slack) and actions.
            using var deliveryHttp = new HttpClient();
            await using var dispatcher = new AlertDispatcher(config.ToDeliveryOptions(), deliveryHttp, services.Time, logger,
                store is Storage.IActionAuditLog audit ? new ActionRunner(config.ToActionOptions(), audit, deliveryHttp, services.Time, logger) : null);
            var alerts = new AlertEngine(config.ToAlertRules(), new FanOutAlertSink(new LogAlertSink(logger), dispatcher), logger);
            pipeline.Alerts = alerts.Rules.Count > 0 && ingestRole is null ? alerts : null;
            using var wal = WriteAheadLog.Open(Path.Combine(dataDirectory, "wal"), new WriteAheadLogOptions { Fsync = config.Ingest.WalFsync }, logger);
            using var ingest = new IngestPipeline(pipeline, new TelemetryMapper(config.ToMapperOptions()), wal, config.ToIngestOptions(), logger);
            // The log first: what was acknowledged before a crash is in the state (and the ledger) before anything new.
            var replayed = await ingest.ReplayAsync(services.Time.GetUtcNow(), cancellationToken).ConfigureAwait(false);
            if (replayed > 0)
                await services.Out.WriteLineAsync($"replayed {replayed} inputs from the write-ahead log; rated through {pipeline.RatedThrough:yyyy-MM-dd HH:mm} UTC").ConfigureAwait(false);

            // storage.retention: dropped once an hour here (roles all and ingest; idempotent across ingesters).
            var housekeeper = store is Storage.ILedgerRetention retention && retention.Retention is { DropsAnything: true } policy
                ? new Storage.LedgerHousekeeper(retention, policy, services.Time, logger)
                : null;
            var (keys, certificate) = LoadSecurity(config, services.GetEnvironmentVariable);
            using var ownedCertificate = certificate;
            var connectors = CreateConnectors(config, dataDirectory, ingest, deliveryHttp, services, logger);
            await using var app = Build(parse.GetValue(listen)!, keys, certificate, store, services.Time, pipeline, ingest, ingestRole is null ? alerts : null, ingestRole is null ? dispatcher : null, feeds, connectors, ingestRole, housekeeper);
            try
            {
                await app.StartAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (IOException e)
            {
                throw new CliUsageException($"--listen: cannot listen on {parse.GetValue(listen)}: {e.Message}");
            }
            // The host handles SIGTERM and SIGINT itself (it stops the application and swallows the signal), so its
            // stopping token ends the loops too: `kill`, systemd and Ctrl+C all stop serve cleanly.
            using var running = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, app.Lifetime.ApplicationStopping);
            cancellationToken = running.Token;
            using var stopIngest = new CancellationTokenSource();
            var applying = ingest.RunAsync(stopIngest.Token);
            var targets = config.ToScrapeTargets();
            using var http = new HttpClient();
            var scraping = targets.Count == 0 ? Task.CompletedTask : new Scraper(ingest, targets, http, services.Time, logger).RunAsync(cancellationToken);
            var polling = Task.WhenAll(connectors.Connectors.Select(c => RunConnectorAsync(c, logger, cancellationToken)));
            // Started before the banner, so its first timer is armed on the clock before anyone can send input.
            var rating = RateLoopAsync(ingest, services.Time, logger, cancellationToken);
            var feedPolling = feeds.RunAsync(cancellationToken);
            var housekeeping = housekeeper is null ? Task.CompletedTask : housekeeper.RunAsync(cancellationToken);
            // Rules judged from the live burn fire within a second of their evidence: after each applied batch and on a
            // one-second tick (for a rule's `for` to run out while nothing new arrives).
            ingest.LiveAlertClock = services.Time;
            var liveAlerts = pipeline.Alerts is null ? Task.CompletedTask : LiveAlertLoopAsync(pipeline, services.Time, logger, cancellationToken);
            var access = keys.Count == 0 ? "no API keys: loopback only" : $"{keys.Count} API keys";
            var roleNote = ingestRole is null ? "" : "role ingest: no alert evaluation or delivery, the ruler does that; ";
            await services.Out.WriteLineAsync($"burnrate serving {string.Join(", ", app.Urls)} ({roleNote}ledger {ledger}; {targets.Count} scrape targets; {connectors.Connectors.Count} connectors; {access}); Ctrl+C stops").ConfigureAwait(false);
            await rating.ConfigureAwait(false);
            await liveAlerts.ConfigureAwait(false);
            await scraping.ConfigureAwait(false);
            await polling.ConfigureAwait(false);
            await feedPolling.ConfigureAwait(false);
            await housekeeping.ConfigureAwait(false);
            await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
            // Nothing new can arrive now: apply what is queued, then rate what closed since the last tick (and rows a
            // failed write left behind) before exit. What is still open stays in the log for the next start.
            await stopIngest.CancelAsync().ConfigureAwait(false);
            await applying.ConfigureAwait(false);
            await RateOnceAsync(ingest, services.Time, logger, CancellationToken.None).ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>The connectors the config turns on (docs/connectors.md); each keeps what it reported under <c>{data}/connectors</c>.</summary>
    private static ConnectorRegistry CreateConnectors(BurnrateConfig config, string dataDirectory, IngestPipeline ingest, HttpClient http, CliServices services, ILogger logger)
    {
        var connectors = new List<IConnector>();
        var time = services.Time;
        try
        {
            // Polls are scheduled on the injected clock; a command's timeout is wall-clock time (the process runs for real).
            if (config.Connectors.ToSlurmOptions(Path.Combine(dataDirectory, "connectors", "slurm.json")) is { } slurm)
                connectors.Add(new SlurmConnector(ingest, slurm, new ProcessSlurmCommands(slurm.BinDir, slurm.Timeout), time, logger));
            if (config.Connectors.ToSkyPilotOptions(services.GetEnvironmentVariable, Path.Combine(dataDirectory, "connectors", "skypilot.json")) is { } skypilot)
                connectors.Add(new SkyPilotConnector(ingest, skypilot, http, ingest.Cost.Prices, time, logger));
        }
        catch (IOException e)
        {
            throw new CliUsageException("connectors: " + e.Message);
        }
        catch (ArgumentException e)
        {
            throw new CliUsageException($"{config.Path ?? "config"}: {e.Message}");
        }
        return new ConnectorRegistry(connectors);
    }

    /// <summary>Runs one connector; one that fails outright is logged and stops alone, the server runs on.</summary>
    private static async Task RunConnectorAsync(IConnector connector, ILogger logger, CancellationToken cancellationToken)
    {
        try
        {
            await connector.RunAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
#pragma warning disable CA1031 // A connector's bug must not take the server down: its health says it stopped.
        catch (Exception e)
#pragma warning restore CA1031
        {
            LogConnectorStopped(logger, connector.Health.Name, e.Message);
        }
    }

    /// <summary>Rates closed minutes every <see cref="RatingInterval"/> until cancelled.</summary>
    private static async Task RateLoopAsync(IngestPipeline pipeline, TimeProvider time, ILogger logger, CancellationToken cancellationToken)
    {
        while (true)
        {
            try
            {
                await Task.Delay(RatingInterval, time, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            await RateOnceAsync(pipeline, time, logger, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Evaluates the live-judged alert rules every <see cref="LiveAlertInterval"/> until cancelled.</summary>
    private static async Task LiveAlertLoopAsync(CostPipeline pipeline, TimeProvider time, ILogger logger, CancellationToken cancellationToken)
    {
        while (true)
        {
            try
            {
                await Task.Delay(LiveAlertInterval, time, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            try
            {
                pipeline.EvaluateLive(time.GetUtcNow());
            }
#pragma warning disable CA1031 // A failing rule must not stop the server; the minute evaluation still runs.
            catch (Exception e)
#pragma warning restore CA1031
            {
                LogLiveAlertsFailed(logger, e.Message);
            }
        }
    }

    private static async Task RateOnceAsync(IngestPipeline pipeline, TimeProvider time, ILogger logger, CancellationToken cancellationToken)
    {
        try
        {
            await pipeline.RateAsync(time.GetUtcNow(), cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
#pragma warning disable CA1031 // A store outage must not stop the server: the pipeline keeps the rows and retries next tick.
        catch (Exception e)
#pragma warning restore CA1031
        {
            LogRatingFailed(logger, pipeline.Cost.PendingRows, e.Message);
        }
    }

    /// <summary>The price feeds of <paramref name="config"/>, their secrets read from the environment now; a usage error naming the key.</summary>
    private static IReadOnlyList<PriceFeedOptions> LoadFeeds(BurnrateConfig config, Func<string, string?> environment)
    {
        try
        {
            return config.ToPriceFeedOptions(environment);
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            throw new CliUsageException($"{config.Path ?? "config"}: {e.Message}");
        }
    }

    private static BurnrateConfig LoadConfig(string? path)
    {
        try
        {
            return BurnrateConfig.Load(path);
        }
        catch (ConfigException e)
        {
            throw new CliUsageException(e.Message);
        }
    }

    /// <summary>
    /// The API keys (secrets named by <c>env</c> read now) and the HTTPS certificate of <paramref name="config"/>; a usage
    /// error naming the config key when either is wrong. The caller disposes the certificate.
    /// </summary>
    internal static (IReadOnlyList<ApiKey> Keys, X509Certificate2? Certificate) LoadSecurity(BurnrateConfig config, Func<string, string?> environment)
    {
        try
        {
            var keys = config.ToApiKeys(environment);
            var files = config.ToTlsFiles();
            return (keys, files is { } f ? X509Certificate2.CreateFromPemFile(f.Certificate, f.Key) : null);
        }
        catch (ArgumentException e)
        {
            throw new CliUsageException($"{config.Path ?? "config"}: {e.Message}");
        }
        catch (CryptographicException e)
        {
            throw new CliUsageException($"{config.Path ?? "config"}: tls: cannot load the certificate and key: {e.Message}");
        }
    }

    /// <summary>
    /// <c>--role api</c>: the API and dashboard over the ledger, without receivers, write-ahead log, rating or alerts.
    /// Live views (<c>/api/v1/burn</c>, the fleet) answer 503; receivers answer 503.
    /// </summary>
    private static async Task<int> ServeApiOnlyAsync(CliServices services, BurnrateConfig config, string dataDirectory, string listen, CancellationToken cancellationToken)
    {
        var logger = new StderrLogger(services.Error);
        var (book, _) = PricingSetup.Load(config, logger);
        var (opened, ledger) = await BurnrateCli.OpenConfiguredStoreAsync(services, config, dataDirectory, logger, cancellationToken).ConfigureAwait(false);
        await using var store = opened;
        var (keys, certificate) = LoadSecurity(config, services.GetEnvironmentVariable);
        using var ownedCertificate = certificate;
        var app = await StartServerAsync(listen, keys, certificate, store, services.Time, s => s.AddSingleton<IPriceBook>(book).AddSingleton(config.ToPricingTerms()), cancellationToken).ConfigureAwait(false);
        await using (app.ConfigureAwait(false))
        {
            await services.Out.WriteLineAsync($"burnrate serving {string.Join(", ", app.Urls)} (role api: ledger {ledger}; no receivers or rating); Ctrl+C stops").ConfigureAwait(false);
            using var stopping = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, app.Lifetime.ApplicationStopping);
            try
            {
                await Task.Delay(Timeout.Infinite, stopping.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
            await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
        }
        return ExitCodes.Ok;
    }

    /// <summary>
    /// <c>--role ruler</c>: evaluates the alert rules from the settled minutes of the store every <c>ruler.interval</c>
    /// (<see cref="AlertRuler"/>) and delivers them as the single process does; serves what <c>--role api</c> serves plus
    /// the alerts (<c>/api/v1/alerts</c>) and the ruler's progress on <c>/metrics</c>. No receivers, log or rating.
    /// </summary>
    private static async Task<int> ServeRulerAsync(CliServices services, BurnrateConfig config, string dataDirectory, string listen, CancellationToken cancellationToken)
    {
        var logger = new StderrLogger(services.Error);
        var (book, _) = PricingSetup.Load(config, logger);
        var rulerOptions = config.ToRulerOptions();
        var (opened, ledger) = await BurnrateCli.OpenConfiguredStoreAsync(services, config, dataDirectory, logger, cancellationToken).ConfigureAwait(false);
        await using var store = opened;
        using var deliveryHttp = new HttpClient();
        await using var dispatcher = new AlertDispatcher(config.ToDeliveryOptions(), deliveryHttp, services.Time, logger,
            store is Storage.IActionAuditLog audit ? new ActionRunner(config.ToActionOptions(), audit, deliveryHttp, services.Time, logger) : null);
        var alerts = new AlertEngine(config.ToAlertRules(), new FanOutAlertSink(new LogAlertSink(logger), dispatcher), logger);
        var ruler = new AlertRuler(store, alerts, rulerOptions, services.Time, logger: logger);
        var (keys, certificate) = LoadSecurity(config, services.GetEnvironmentVariable);
        using var ownedCertificate = certificate;
        var app = await StartServerAsync(listen, keys, certificate, store, services.Time,
            s => s.AddSingleton<IPriceBook>(book).AddSingleton(alerts).AddSingleton(dispatcher).AddSingleton(ruler)
                .AddSingleton(new ServerRole("ruler", EvaluatesAlerts: true)), cancellationToken).ConfigureAwait(false);
        await using (app.ConfigureAwait(false))
        {
            using var stopping = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, app.Lifetime.ApplicationStopping);
            // Started before the banner, so its first tick is on the clock before anyone looks.
            var ruling = ruler.RunAsync(stopping.Token);
            await services.Out.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"burnrate serving {string.Join(", ", app.Urls)} (role ruler: {alerts.Rules.Count} rules over the settled minutes of ledger {ledger}, every {rulerOptions.Interval.TotalSeconds:0.###}s, {rulerOptions.Settle.TotalSeconds:0.###}s after a minute's end; ruler id {ruler.Id}, lease {rulerOptions.EffectiveLease.TotalSeconds:0.###}s; no receivers or rating); Ctrl+C stops")).ConfigureAwait(false);
            await ruling.ConfigureAwait(false);
            await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
        }
        return ExitCodes.Ok;
    }

    /// <summary>
    /// Builds and starts the HTTP server of a role without receivers (<c>api</c>, <c>ruler</c>) over
    /// <paramref name="store"/>; a bad <c>--listen</c> or a port it cannot take is a usage error. The caller disposes it.
    /// </summary>
    private static async Task<Microsoft.AspNetCore.Builder.WebApplication> StartServerAsync(string listen, IReadOnlyList<ApiKey> keys, X509Certificate2? certificate,
        Storage.ICostStore store, TimeProvider time, Action<IServiceCollection> configure, CancellationToken cancellationToken)
    {
        Microsoft.AspNetCore.Builder.WebApplication app;
        try
        {
            app = BurnrateServer.Build(new BurnrateServerOptions
            {
                Listen = listen,
                ApiKeys = keys,
                Certificate = certificate,
                Store = store,
                Time = time,
                ConfigureServices = configure,
            });
        }
        catch (ArgumentException e)
        {
            throw new CliUsageException("--listen: " + e.Message);
        }
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            await app.DisposeAsync().ConfigureAwait(false);
            throw new CliUsageException($"--listen: cannot listen on {listen}: {e.Message}");
        }
        return app;
    }

    private static Microsoft.AspNetCore.Builder.WebApplication Build(string listen, IReadOnlyList<ApiKey> keys, X509Certificate2? certificate, Storage.ICostStore store, TimeProvider time, CostPipeline pipeline, IngestPipeline ingest, AlertEngine? alerts, AlertDispatcher? dispatcher, PriceFeeds feeds, ConnectorRegistry connectors, ServerRole? role, Storage.LedgerHousekeeper? housekeeper)
    {
        try
        {
            return BurnrateServer.Build(new BurnrateServerOptions
            {
                Listen = listen,
                ApiKeys = keys,
                Certificate = certificate,
                Store = store,
                Time = time,
                ConfigureServices = s =>
                {
                    s.AddSingleton(pipeline).AddSingleton(ingest).AddSingleton(feeds).AddSingleton(connectors);
                    if (alerts is not null)
                        s.AddSingleton(alerts);
                    if (dispatcher is not null)
                        s.AddSingleton(dispatcher);
                    if (role is not null)
                        s.AddSingleton(role);
                    if (housekeeper is not null)
                        s.AddSingleton(housekeeper);
                },
            });
        }
        catch (ArgumentException e)
        {
            throw new CliUsageException("--listen: " + e.Message);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "rating: writing the ledger failed; {PendingRows} rows kept for the next try: {Reason}")]
    private static partial void LogRatingFailed(ILogger logger, int pendingRows, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "connector {Name} stopped: {Reason}; the rest of burnrate runs on")]
    private static partial void LogConnectorStopped(ILogger logger, string name, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "alerts: live evaluation failed: {Reason}")]
    private static partial void LogLiveAlertsFailed(ILogger logger, string reason);
}
