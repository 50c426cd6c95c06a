using Burnrate.Pricing;
using Burnrate.Rating;
using Burnrate.Storage;
using Burnrate.Storage.DuckDb;
using Burnrate.Telemetry;
using Burnrate.Tests.Support;

namespace Burnrate.Tests.Rating;

public sealed class CostPipelineTests
{
    /// <summary>A store that fails its first N ledger writes, then passes through to a real one.</summary>
    private sealed class FlakyStore(ICostStore inner, int failures) : ICostStore
    {
        private int _failures = failures;
        public Task MigrateAsync(CancellationToken cancellationToken = default) => inner.MigrateAsync(cancellationToken);
        public Task WriteAsync(IReadOnlyList<CostLine> lines, CancellationToken cancellationToken = default) =>
            Interlocked.Decrement(ref _failures) >= 0 ? throw new IOException("disk full") : inner.WriteAsync(lines, cancellationToken);
        public Task UpsertWorkloadsAsync(IReadOnlyList<WorkloadRecord> workloads, CancellationToken cancellationToken = default) => inner.UpsertWorkloadsAsync(workloads, cancellationToken);
        public Task WriteWorkAsync(IReadOnlyList<WorkMinute> work, CancellationToken cancellationToken = default) => inner.WriteWorkAsync(work, cancellationToken);
        public Task<IReadOnlyList<CostReportRow>> QueryCostsAsync(CostQuery query, CancellationToken cancellationToken = default) => inner.QueryCostsAsync(query, cancellationToken);
        public Task<IReadOnlyList<WorkloadRecord>> GetWorkloadsAsync(IReadOnlyCollection<string>? ids = null, CancellationToken cancellationToken = default) => inner.GetWorkloadsAsync(ids, cancellationToken);
        public Task<IReadOnlyList<CostLine>> GetLinesAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default) => inner.GetLinesAsync(from, to, cancellationToken);
        public Task<IReadOnlyList<WorkTotal>> GetWorkTotalsAsync(DateTimeOffset from, DateTimeOffset to, IReadOnlyCollection<string>? workloadIds = null, CancellationToken cancellationToken = default) => inner.GetWorkTotalsAsync(from, to, workloadIds, cancellationToken);

        public Task<(DateTimeOffset First, DateTimeOffset Last)?> GetLedgerSpanAsync(CancellationToken cancellationToken = default) => inner.GetLedgerSpanAsync(cancellationToken);
        public Task WriteBillingAsync(IReadOnlyList<Burnrate.Billing.BillingLine> lines, string sourceFile, CancellationToken cancellationToken = default) => inner.WriteBillingAsync(lines, sourceFile, cancellationToken);
        public Task<IReadOnlyList<Burnrate.Billing.BillingLine>> QueryBillingAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default) => inner.QueryBillingAsync(from, to, cancellationToken);
        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }

    [Fact]
    public async Task Rows_rated_while_the_store_fails_are_written_on_the_next_call_and_nothing_is_lost()
    {
        var book = new FakePriceBook();
        book.Add(Some.Price("p4d.24xlarge", CapacityType.OnDemand, 36m, 3.6m, 8));
        await using var store = new FlakyStore(await DuckDbCostStore.OpenAsync(":memory:", ct: TestContext.Current.CancellationToken), failures: 1);
        using var pipeline = new CostPipeline(new RatingEngine(book, new FakeRateCard()), store, new RatingOptions { Grace = TimeSpan.Zero });
        pipeline.Apply([new NodeStarted(Some.At(12, 0), Some.Node("i-1", "p4d.24xlarge", 8))]);

        await Assert.ThrowsAsync<IOException>(() => pipeline.RateClosedMinutesAsync(Some.At(12, 2), TestContext.Current.CancellationToken));
        Assert.True(pipeline.PendingRows > 0);
        await pipeline.RateClosedMinutesAsync(Some.At(12, 3), TestContext.Current.CancellationToken);

        Assert.Equal(0, pipeline.PendingRows);
        var rows = await store.QueryCostsAsync(new CostQuery { From = Some.At(12, 0), To = Some.At(13, 0) }, TestContext.Current.CancellationToken);
        // Three minutes at $36/h = $0.60 a minute.
        Assert.Equal(Money.FromDollars(1.80m), Assert.Single(rows).Cost);
    }

    [Fact]
    public async Task A_minute_is_rated_only_after_its_grace_period()
    {
        var book = new FakePriceBook();
        book.Add(Some.Price("p4d.24xlarge", CapacityType.OnDemand, 36m, 3.6m, 8));
        await using var store = await DuckDbCostStore.OpenAsync(":memory:", ct: TestContext.Current.CancellationToken);
        using var pipeline = new CostPipeline(new RatingEngine(book, new FakeRateCard()), store, new RatingOptions { Grace = TimeSpan.FromSeconds(30) });
        pipeline.Apply([new NodeStarted(Some.At(12, 0), Some.Node("i-1", "p4d.24xlarge", 8))]);

        Assert.Equal(0, await pipeline.RateClosedMinutesAsync(Some.At(12, 1, 29), TestContext.Current.CancellationToken));
        Assert.Equal(1, await pipeline.RateClosedMinutesAsync(Some.At(12, 1, 30), TestContext.Current.CancellationToken));
        Assert.Equal(Money.FromDollars(0.60m), pipeline.Total);
        Assert.Equal(HourlyRate.FromDollarsPerHour(36m), pipeline.Burn(Some.At(12, 1, 30)).Total);
    }
}
