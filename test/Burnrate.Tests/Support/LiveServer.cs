using Burnrate.Configuration;
using Burnrate.Ingest;
using Burnrate.Pricing;
using Burnrate.Rating;
using Burnrate.Server;
using Burnrate.Storage.DuckDb;
using Burnrate.Telemetry.Mapping;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Burnrate.Tests.Support;

/// <summary>
/// What <c>burnrate serve</c> runs, in-process on 127.0.0.1:0: a DuckDB ledger and write-ahead log in
/// <c>directory</c>, the built-in prices, the ingest and rating pipelines, and (unless told not to) the ingest reader.
/// </summary>
internal sealed class LiveServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly DuckDbCostStore _store;
    private readonly CostPipeline _cost;
    private readonly CancellationTokenSource _stop;
    private readonly Task _applying;

    private LiveServer(WebApplication app, DuckDbCostStore store, WriteAheadLog wal, CostPipeline cost, IngestPipeline ingest, CancellationTokenSource stop, Task applying)
    {
        _app = app;
        _store = store;
        Wal = wal;
        _cost = cost;
        Ingest = ingest;
        _stop = stop;
        _applying = applying;
        Url = app.Urls.Single();
    }

    public string Url { get; }

    public IngestPipeline Ingest { get; }

    public WriteAheadLog Wal { get; }

    public static async Task<LiveServer> StartAsync(string directory, TimeProvider time, IngestOptions? options = null, bool runReader = true)
    {
        var ct = TestContext.Current.CancellationToken;
        var config = new BurnrateConfig();
        var (book, rateCard) = PricingSetup.Load(config);
        var ratingOptions = config.ToRatingOptions();
        var store = await DuckDbCostStore.OpenAsync(Path.Combine(directory, "burnrate.duckdb"), null, time, ct);
        var cost = new CostPipeline(new RatingEngine(book, rateCard, config.ToAttributionRules(), ratingOptions), store, ratingOptions);
        var wal = WriteAheadLog.Open(Path.Combine(directory, "wal"));
        var ingest = new IngestPipeline(cost, new TelemetryMapper(config.ToMapperOptions()), wal, options ?? config.ToIngestOptions());
        var app = BurnrateServer.Build(new BurnrateServerOptions
        {
            Listen = "127.0.0.1:0",
            Store = store,
            Time = time,
            ConfigureServices = s => s.AddSingleton(cost).AddSingleton(ingest),
        });
        await app.StartAsync(ct);
        var stop = new CancellationTokenSource();
        return new LiveServer(app, store, wal, cost, ingest, stop, runReader ? ingest.RunAsync(stop.Token) : Task.CompletedTask);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync(CancellationToken.None);
        await _app.DisposeAsync();
        await _stop.CancelAsync();
        await _applying;
        _stop.Dispose();
        Ingest.Dispose();
        _cost.Dispose();
        Wal.Dispose();
        await _store.DisposeAsync();
    }
}
