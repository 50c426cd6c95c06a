using Burnrate.Configuration;
using Burnrate.Demo;
using Burnrate.Pricing;
using Burnrate.Rating;
using Burnrate.Simulation;
using Burnrate.Storage;
using Burnrate.Storage.DuckDb;
using Microsoft.Extensions.Time.Testing;

namespace Burnrate.Tests.Demo;

/// <summary>The simulator through the real pipeline into a DuckDB file, on virtual time.</summary>
public sealed class FleetReplayTests : IDisposable
{
    private static readonly DateTimeOffset s_epoch = new(2026, 3, 2, 8, 0, 0, TimeSpan.Zero);
    private readonly string _directory = Directory.CreateTempSubdirectory("burnrate-replay-").FullName;

    private string DbPath => Path.Combine(_directory, "burnrate.duckdb");

    private static async Task ReplayAsync(ICostStore store, string scenarios, TimeSpan span)
    {
        var (book, rateCard) = PricingSetup.Load(new BurnrateConfig());
        var options = new RatingOptions();
        var simulator = new FleetSimulator(ScenarioLibrary.Resolve(scenarios), new FleetSimulatorOptions
        {
            Epoch = s_epoch,
            IgnoreAnchors = true,
            BasePrice = FleetReplay.BasePrices(book, s_epoch),
        });
        var clock = new FakeTimeProvider(s_epoch);
        using var pipeline = new CostPipeline(new RatingEngine(book, rateCard, new BurnrateConfig().ToAttributionRules(), options), store, options);
        var replay = new FleetReplay(simulator, pipeline, clock);
        while (clock.GetUtcNow() < s_epoch + span)
        {
            clock.Advance(TimeSpan.FromSeconds(47)); // ticks that do not line up with minutes
            await replay.TickAsync(s_epoch + span, TestContext.Current.CancellationToken);
        }
        await replay.FinishAsync(s_epoch + span, options.Grace, TestContext.Current.CancellationToken);
    }

    private static async Task<string> ReportAsync(ICostStore store)
    {
        var rows = await store.QueryCostsAsync(new CostQuery
        {
            From = s_epoch,
            To = s_epoch.AddDays(1),
            By = [CostDimension.Team, CostDimension.Cloud, CostDimension.Component, CostDimension.Idle],
        }, TestContext.Current.CancellationToken);
        return string.Join("\n", rows.OrderBy(r => string.Join("/", r.Keys), StringComparer.Ordinal)
            .Select(r => $"{string.Join("/", r.Keys)} {r.Cost.Nanos} {r.IdleCost.Nanos} {r.GpuSeconds}"));
    }

    [Fact]
    public async Task A_restarted_store_gives_the_same_report_and_replaying_the_same_minutes_changes_nothing()
    {
        string first;
        await using (var store = await DuckDbCostStore.OpenAsync(DbPath, ct: TestContext.Current.CancellationToken))
        {
            await ReplayAsync(store, "baseline+s3+s13", TimeSpan.FromMinutes(90));
            first = await ReportAsync(store);
        }
        Assert.NotEmpty(first);

        await using (var reopened = await DuckDbCostStore.OpenAsync(DbPath, ct: TestContext.Current.CancellationToken))
        {
            Assert.Equal(first, await ReportAsync(reopened));
            // The same fleet rated again writes the same minutes: keyed rows are replaced, never added.
            await ReplayAsync(reopened, "baseline+s3+s13", TimeSpan.FromMinutes(90));
            Assert.Equal(first, await ReportAsync(reopened));
        }
    }

    [Fact]
    public async Task The_ledger_stops_at_the_end_of_the_replay()
    {
        await using var store = await DuckDbCostStore.OpenAsync(":memory:", ct: TestContext.Current.CancellationToken);
        await ReplayAsync(store, "s2", TimeSpan.FromMinutes(30));

        var span = await store.GetLedgerSpanAsync(TestContext.Current.CancellationToken);

        Assert.NotNull(span);
        Assert.True(span.Value.Last < s_epoch.AddMinutes(30), $"last minute {span.Value.Last:O}");
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
