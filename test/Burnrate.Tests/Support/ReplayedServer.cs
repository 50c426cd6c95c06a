using Burnrate.Configuration;
using Burnrate.Demo;
using Burnrate.Pricing;
using Burnrate.Rating;
using Burnrate.Server;
using Burnrate.Simulation;
using Burnrate.Storage.DuckDb;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Burnrate.Tests.Support;

/// <summary>
/// What <c>burnrate demo</c> serves, on virtual time: the simulator plays <c>scenarios</c> for <c>span</c> through the
/// real rating pipeline into an in-memory DuckDB ledger, then the server answers on 127.0.0.1:0 with its clock stopped
/// at the end of the replay (so the burn and the ledger hold still while a test reads them).
/// </summary>
internal sealed class ReplayedServer : IAsyncDisposable
{
    public static readonly DateTimeOffset Epoch = new(2026, 3, 2, 8, 0, 0, TimeSpan.Zero);

    private readonly WebApplication _app;
    private readonly DuckDbCostStore _store;

    private ReplayedServer(WebApplication app, DuckDbCostStore store, CostPipeline pipeline, DateTimeOffset end)
    {
        _app = app;
        _store = store;
        Pipeline = pipeline;
        End = end;
        Url = new Uri(app.Urls.Single());
    }

    public Uri Url { get; }

    public CostPipeline Pipeline { get; }

    /// <summary>The end of the replay: the server's now.</summary>
    public DateTimeOffset End { get; }

    public HttpClient Client() => new() { BaseAddress = Url };

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
        var replay = new FleetReplay(simulator, pipeline, clock);
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
            Store = store,
            Time = clock,
            ConfigureServices = s => s.AddSingleton(pipeline),
        });
        await app.StartAsync(ct);
        return new ReplayedServer(app, store, pipeline, end);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync(CancellationToken.None);
        await _app.DisposeAsync();
        Pipeline.Dispose();
        await _store.DisposeAsync();
    }
}
