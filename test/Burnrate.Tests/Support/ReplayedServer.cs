using Burnrate.Alerting;
using Burnrate.Configuration;
using Burnrate.Demo;
using Burnrate.Ingest;
using Burnrate.Pricing;
using Burnrate.Rating;
using Burnrate.Server;
using Burnrate.Simulation;
using Burnrate.Storage.DuckDb;
using Burnrate.Telemetry.Mapping;
using Burnrate.Tests.Alerting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Burnrate.Tests.Support;

/// <summary>
/// What <c>burnrate demo</c> serves, on virtual time: the simulator plays <c>scenarios</c> for <c>span</c> through the
/// ingest and rating pipelines into an in-memory DuckDB ledger, then the server answers on 127.0.0.1:0 with its clock stopped
/// at the end of the replay (so the burn and the ledger hold still while a test reads them).
/// </summary>
internal sealed class ReplayedServer : IAsyncDisposable
{
    public static readonly DateTimeOffset Epoch = new(2026, 3, 2, 8, 0, 0, TimeSpan.Zero);

    private readonly WebApplication _app;
    private readonly DuckDbCostStore _store;
    private readonly IngestPipeline _ingest;

    private ReplayedServer(WebApplication app, DuckDbCostStore store, IngestPipeline ingest, CostPipeline pipeline, DateTimeOffset end)
    {
        _app = app;
        _store = store;
        _ingest = ingest;
        Pipeline = pipeline;
        End = end;
        Url = new Uri(app.Urls.Single());
    }

    public Uri Url { get; }

    public CostPipeline Pipeline { get; }

    /// <summary>The end of the replay: the server's now.</summary>
    public DateTimeOffset End { get; }

    public HttpClient Client() => new() { BaseAddress = Url };

    /// <summary>Every route the server maps, for tests that must cover all of them.</summary>
    public IReadOnlyList<RouteEndpoint> Endpoints =>
        [.. ((IEndpointRouteBuilder)_app).DataSources.SelectMany(d => d.Endpoints).OfType<RouteEndpoint>()];

    public static async Task<ReplayedServer> StartAsync(string scenarios, TimeSpan span, BurnrateConfig? config = null)
    {
        var ct = TestContext.Current.CancellationToken;
        config ??= new BurnrateConfig();
        var (book, rateCard) = PricingSetup.Load(config);
        var options = config.ToRatingOptions();
        var end = Epoch + span;
        var simulator = new FleetSimulator(ScenarioLibrary.Resolve(scenarios), new FleetSimulatorOptions
        {
            Epoch = Epoch,
            IgnoreAnchors = true,
            BasePrice = FleetReplay.BasePrices(book, Epoch),
        });
        var clock = new FakeTimeProvider(Epoch);
        var store = await DuckDbCostStore.OpenAsync(":memory:", ct: ct);
        var pipeline = new CostPipeline(new RatingEngine(book, rateCard, config.ToAttributionRules(), options), store, options);
        // Alert rules only when the config names some: the other tests read a server without alerts.
        var alerts = config.Rules is null ? null : new AlertEngine(config.ToAlertRules(), new RecordingAlertSink());
        pipeline.Alerts = alerts;
        // As in the demo, no write-ahead log: the simulator's events are not wire input (LiveServer has one).
        var ingest = new IngestPipeline(pipeline, new TelemetryMapper(config.ToMapperOptions()), wal: null, config.ToIngestOptions());
        var replay = new FleetReplay(simulator, ingest, clock);
        while (clock.GetUtcNow() < end)
        {
            var step = TimeSpan.FromSeconds(47); // ticks that do not line up with minutes
            clock.Advance(end - clock.GetUtcNow() < step ? end - clock.GetUtcNow() : step);
            await replay.TickAsync(end, ct);
        }
        await replay.FinishAsync(end, options.Grace, ct);
        var app = BurnrateServer.Build(new BurnrateServerOptions
        {
            Listen = "127.0.0.1:0",
            ApiKeys = config.ToApiKeys(),
            Store = store,
            Time = clock,
            ConfigureServices = s =>
            {
                s.AddSingleton(pipeline).AddSingleton(ingest);
                if (alerts is not null)
                    s.AddSingleton(alerts);
            },
        });
        await app.StartAsync(ct);
        return new ReplayedServer(app, store, ingest, pipeline, end);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync(CancellationToken.None);
        await _app.DisposeAsync();
        _ingest.Dispose();
        Pipeline.Dispose();
        await _store.DisposeAsync();
    }
}
