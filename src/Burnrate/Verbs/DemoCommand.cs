using System.CommandLine;
using Burnrate.Alerting;
using Burnrate.Alerting.Delivery;
using Burnrate.Configuration;
using Burnrate.Demo;
using Burnrate.Ingest;
using Burnrate.Pricing;
using Burnrate.Rating;
using Burnrate.Server;
using Burnrate.Simulation;
using Burnrate.Telemetry.Mapping;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Burnrate.Cli.Verbs;

/// <summary>
/// <c>burnrate demo</c>: the server with the embedded store, fed by a built-in simulated multi-cloud fleet that plays
/// the scenarios; a live table of the top burn rates; ends by itself after <c>--duration</c>.
/// </summary>
internal static class DemoCommand
{
    public static Command Create(CliServices services)
    {
        var scenario = new Option<string>("--scenario")
        {
            // Not read from the scenario library: parsing every scenario file on each start would slow every verb.
            Description = "What to play: 'all' (the baseline fleet and every scenario), one id (baseline, s1 … s13; 'burnrate demo list' shows them), or ids joined by '+'",
            HelpName = "ID",
            DefaultValueFactory = _ => ScenarioLibrary.All,
        };
        var speed = new Option<double>("--speed")
        {
            Description = "Virtual seconds per wall second (60: an hour of fleet a minute)",
            HelpName = "N",
            DefaultValueFactory = _ => 60,
        };
        var duration = new Option<string>("--duration")
        {
            Description = "Wall-clock time the demo runs before it ends by itself, e.g. 2m; it replays the last duration×speed of fleet time up to now",
            HelpName = "D",
            DefaultValueFactory = _ => "5m",
        };
        var listen = new Option<string>("--listen")
        {
            Description = "Address of the API while the demo runs (port 0 picks a free one); other than loopback only when the config has auth.keys (docs/security.md)",
            HelpName = "ADDR",
            DefaultValueFactory = _ => "127.0.0.1:9840",
        };
        var seed = new Option<int>("--seed") { Description = "Seed of the simulator's jitter (same seed, same fleet)", DefaultValueFactory = _ => 42 };
        var command = new Command("demo", "Serve a simulated multi-cloud GPU fleet playing scenarios S1–S13, priced live by the real rating engine into the ledger")
        {
            scenario, speed, duration, listen, seed,
        };
        command.Subcommands.Add(new Command("list", "List the built-in scenarios and what each should catch"));
        command.Subcommands[0].SetAction(parse =>
        {
            var console = Terminal.Create(services.Out);
            var table = new Table().AddColumns("id", "title", "what should catch it");
            foreach (var info in ScenarioLibrary.Infos)
                table.AddRow(Markup.Escape(info.Id), Markup.Escape(info.Title), Markup.Escape(info.ExpectedSignal));
            console.Write(table);
            return ExitCodes.Ok;
        });

        BurnrateCli.SetGuardedAction(command, services, async (parse, cancellationToken) =>
        {
            var speedValue = parse.GetValue(speed);
            if (!(speedValue > 0) || speedValue > 1_000_000)
                throw new CliUsageException($"--speed: {speedValue} must be a number above 0 and at most 1000000");
            if (!Durations.TryParse(parse.GetValue(duration), out var wallDuration) || wallDuration <= TimeSpan.Zero)
                throw new CliUsageException($"--duration: '{parse.GetValue(duration)}' is not a positive duration (examples: 30s, 2m, 1h)");
            IReadOnlyList<Scenario> scenarios;
            try
            {
                scenarios = ScenarioLibrary.Resolve(parse.GetValue(scenario)!);
            }
            catch (ArgumentException e)
            {
                throw new CliUsageException("--scenario: " + e.Message);
            }
            var config = LoadConfig(BurnrateCli.GetConfigFile(parse));
            var dataDirectory = BurnrateCli.GetDataDirectory(parse);
            Directory.CreateDirectory(dataDirectory);
            return await RunAsync(services, config, dataDirectory, scenarios, speedValue, wallDuration, parse.GetValue(listen)!, parse.GetValue(seed), cancellationToken).ConfigureAwait(false);
        });
        return command;
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

    /// <summary>The demo's own rules, added to the defaults when the config has no <c>rules</c> key (docs/alerts.md).</summary>
    internal static IReadOnlyList<AlertRule> DemoRules { get; } =
    [
        new() { Name = "demo-sweep-budget", Kind = AlertRuleKind.Budget, Scope = AlertScope.Project, AmountUsd = 5000, Period = BudgetPeriod.Month, Match = new Dictionary<string, string> { ["project"] = "vit-sweep" } },
        new() { Name = "demo-shared-node-idle", Kind = AlertRuleKind.IdleGpu, Scope = AlertScope.Cluster, MinGpus = 2, For = TimeSpan.FromMinutes(30), Match = new Dictionary<string, string> { ["cluster"] = "eks-shared" } },
    ];

    private static async Task<int> RunAsync(CliServices services, BurnrateConfig config, string dataDirectory, IReadOnlyList<Scenario> scenarios,
        double speed, TimeSpan wallDuration, string listen, int seed, CancellationToken cancellationToken)
    {
        var console = Terminal.Create(services.Out);
        var (book, rateCard) = PricingSetup.Load(config, new StderrLogger(services.Error));
        var ratingOptions = config.ToRatingOptions();
        // The demo replays the fleet time that ends now, so `burnrate report` afterwards finds it in its default range.
        var virtualSpan = TimeSpan.FromTicks((long)(wallDuration.Ticks * speed));
        var end = RatingEngine.Floor(services.Time.GetUtcNow());
        var epoch = end - virtualSpan;
        epoch = RatingEngine.Floor(epoch);
        var clock = new SimulatorTimeProvider(epoch, speed, services.Time);
        var simulator = new FleetSimulator(scenarios, new FleetSimulatorOptions
        {
            Seed = seed,
            Epoch = epoch,
            IgnoreAnchors = true, // a demo shows Friday-night scenarios now, not next Friday
            Stagger = TimeSpan.FromTicks(Math.Max(TimeSpan.TicksPerMinute, virtualSpan.Ticks / 8 / Math.Max(1, scenarios.Count))),
            BasePrice = FleetReplay.BasePrices(book, epoch),
        });

        var ledgerPath = config.DuckDbPath(dataDirectory);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(ledgerPath))!);
        await using var store = await services.OpenStore(ledgerPath, cancellationToken).ConfigureAwait(false);
        var engine = new RatingEngine(book, rateCard, config.ToAttributionRules(), ratingOptions);
        using var pipeline = new CostPipeline(engine, store, ratingOptions);
        var alertLines = new AlertLineSink();
        // Configured targets (notify) get the demo's alerts too, so a webhook or Alertmanager can be tried with it.
        // Delivery runs on the real clock: HTTP timeouts and backoff on the accelerated one would expire in milliseconds.
        using var deliveryHttp = new HttpClient();
        await using var dispatcher = new AlertDispatcher(config.ToDeliveryOptions(), deliveryHttp, services.Time);
        // Without a rules key the demo adds two configured-style rules to the defaults, so that the scenarios no default
        // can catch show their alert too: S11's sweep against a team budget, S13's shared node's idle GPUs.
        var rules = config.Rules is null ? [.. AlertRules.Defaults, .. DemoRules] : config.ToAlertRules();
        var alerts = new AlertEngine(rules, new FanOutAlertSink(alertLines, dispatcher));
        pipeline.Alerts = alerts.Rules.Count > 0 ? alerts : null;
        var recentAlerts = new List<string>();
        using var ingest = new IngestPipeline(pipeline, new TelemetryMapper(config.ToMapperOptions()), wal: null, config.ToIngestOptions());
        var replay = new FleetReplay(simulator, ingest, clock);

        var (keys, certificate) = ServeCommand.LoadSecurity(config, services.GetEnvironmentVariable);
        using var ownedCertificate = certificate;
        WebApplication server;
        try
        {
            server = BurnrateServer.Build(new BurnrateServerOptions
            {
                Listen = listen,
                ApiKeys = keys,
                Certificate = certificate,
                Store = store,
                Time = clock,
                ConfigureServices = s => s.AddSingleton(pipeline).AddSingleton(ingest).AddSingleton(alerts).AddSingleton(dispatcher),
            });
        }
        catch (ArgumentException e)
        {
            throw new CliUsageException("--listen: " + e.Message);
        }
        await using var disposing = server;
        try
        {
            await server.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            throw new CliUsageException($"--listen: cannot listen on {listen}: {e.Message} (another burnrate running? try --listen 127.0.0.1:0)");
        }
        var url = server.Urls.FirstOrDefault() ?? "http://" + listen;
        // The host handles SIGTERM and SIGINT itself (stopping the application, swallowing the signal): its stopping
        // token interrupts the demo like Ctrl+C does.
        using var running = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, server.Lifetime.ApplicationStopping);
        cancellationToken = running.Token;

        console.MarkupLine($"[bold]Burnrate demo[/]: {scenarios.Count} scenario(s), {Durations.Format(virtualSpan)} of fleet time from {epoch:yyyy-MM-dd HH:mm}Z at {speed}× for {Durations.Format(wallDuration)}");
        console.MarkupLine($"Dashboard: [link]{url}/[/] (API: {url}/api/v1/burn, {url}/api/v1/workloads, {url}/openapi/v1.json; Prometheus: {url}/metrics)");
        console.MarkupLine($"Ledger: {Markup.Escape(Path.GetFullPath(ledgerPath))}");
        console.MarkupLine($"Alerts: {alerts.Rules.Count} rule(s){(config.Rules is null ? $" (the built-in defaults and, for S11 and S13, {string.Join(" and ", DemoRules.Select(r => r.Name))}: docs/alerts.md)" : "")}");

        var interactive = ReferenceEquals(services.Out, Console.Out) && !Console.IsOutputRedirected;
        var lastPrinted = epoch;
        if (interactive)
        {
            await console.Live(Render(pipeline.Burn(epoch), clock.GetUtcNow(), end)).StartAsync(async live =>
            {
                await replay.RunAsync(end, TimeSpan.FromMilliseconds(250), ratingOptions.Grace, now =>
                {
                    var fresh = alertLines.Drain();
                    recentAlerts.AddRange(fresh);
                    if (recentAlerts.Count > 10)
                        recentAlerts.RemoveRange(0, recentAlerts.Count - 10);
                    if (fresh.Count > 0 || now - lastPrinted >= TimeSpan.FromSeconds(speed))
                    {
                        live.UpdateTarget(Render(pipeline.Burn(now), now, end, recentAlerts));
                        lastPrinted = now;
                    }
                }, cancellationToken).ConfigureAwait(false);
            }).ConfigureAwait(false);
        }
        else
        {
            // A pipe or CI log: a progress line every tenth of the run.
            var every = TimeSpan.FromTicks(Math.Max(TimeSpan.TicksPerMinute, virtualSpan.Ticks / 10));
            await replay.RunAsync(end, TimeSpan.FromMilliseconds(250), ratingOptions.Grace, now =>
            {
                foreach (var line in alertLines.Drain())
                    services.Out.WriteLine(line); // a line per firing or resolved alert, as it happens
                if (now - lastPrinted < every)
                    return;
                lastPrinted = now;
                var burn = pipeline.Burn(now);
                services.Out.WriteLine($"{now:yyyy-MM-dd HH:mm}Z  {Percent(now, epoch, end),3}%  burning {burn.Total.DollarsPerHour,12:N2} $/h  rated {burn.RatedSoFar}  workloads {burn.Workloads.Count(w => w.WorkloadId.Length > 0)}");
            }, cancellationToken).ConfigureAwait(false);
        }

        foreach (var line in alertLines.Drain())
            services.Out.WriteLine(line);
        var final = pipeline.Burn(RatingEngine.Floor(end).AddSeconds(-1));
        console.Write(Render(final, end, end));
        console.MarkupLine($"Rated {pipeline.RatedThrough:yyyy-MM-dd HH:mm}Z: {pipeline.LineCount:N0} ledger rows from {pipeline.EventCount:N0} events; total {pipeline.Total}.");
        if (pipeline.Unpriced.Count > 0)
            console.MarkupLine($"[yellow]Unpriced (booked at $0):[/] {Markup.Escape(string.Join(", ", pipeline.Unpriced))}");
        console.MarkupLine("Next: [bold]burnrate report --by team[/], [bold]burnrate report --by cloud,gpu[/] (same --data directory).");
        var interrupted = cancellationToken.IsCancellationRequested; // before stopping the server cancels it
        await server.StopAsync(CancellationToken.None).ConfigureAwait(false);
        return interrupted ? ExitCodes.Interrupted : ExitCodes.Ok;
    }

    private static int Percent(DateTimeOffset now, DateTimeOffset from, DateTimeOffset to) =>
        to <= from ? 100 : (int)Math.Clamp(100 * (now - from).Ticks / (to - from).Ticks, 0, 100);

    /// <summary>The live view: per cloud, then the top workloads by burn rate.</summary>
    internal static IRenderable Render(BurnSummary burn, DateTimeOffset now, DateTimeOffset end, IReadOnlyList<string>? alerts = null)
    {
        var clouds = new Table().Title($"Fleet at {now:yyyy-MM-dd HH:mm}Z").AddColumn("cloud").AddColumn(new TableColumn("$/h now").RightAligned()).AddColumn(new TableColumn("cost so far").RightAligned());
        foreach (var p in burn.Providers)
            clouds.AddRow(Markup.Escape(p.Provider), p.Rate.DollarsPerHour.ToString("N2", System.Globalization.CultureInfo.InvariantCulture), p.Total.ToString());
        clouds.AddRow("[bold]total[/]", $"[bold]{burn.Total.DollarsPerHour:N2}[/]", $"[bold]{Markup.Escape(burn.RatedSoFar.ToString())}[/]");

        var top = new Table().Title("Top burn rates").AddColumns("workload", "team", "user", "cloud").AddColumn(new TableColumn("$/h").RightAligned()).AddColumn(new TableColumn("so far").RightAligned());
        foreach (var w in burn.Workloads.Take(12))
        {
            top.AddRow(Markup.Escape(w.WorkloadId.Length == 0 ? "(idle capacity)" : w.WorkloadId), Markup.Escape(w.Team), Markup.Escape(w.User), Markup.Escape(w.Providers),
                w.Rate.DollarsPerHour.ToString("N2", System.Globalization.CultureInfo.InvariantCulture), w.Total.ToString());
        }
        var left = end - now;
        var alertView = new Rows(alerts is { Count: > 0 } ? [new Markup("[bold]Alerts[/]"), .. alerts.Select(a => new Markup(Markup.Escape(a)))] : Array.Empty<IRenderable>());
        return new Rows(clouds, top, alertView, new Markup(left > TimeSpan.Zero ? $"[grey]{Durations.Format(TimeSpan.FromMinutes(Math.Ceiling(left.TotalMinutes)))} of fleet time left[/]" : "[grey]done[/]"));
    }
}
