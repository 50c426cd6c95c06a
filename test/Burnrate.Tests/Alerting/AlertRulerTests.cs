using Burnrate.Alerting;
using Burnrate.Attribution;
using Burnrate.Pricing;
using Burnrate.Rating;
using Burnrate.Storage;
using Burnrate.Storage.DuckDb;
using Burnrate.Tests.Storage;
using Microsoft.Extensions.Time.Testing;

namespace Burnrate.Tests.Alerting;

/// <summary>
/// The ruler (<c>serve --role ruler</c>) on virtual time over a store that ingesters would write: a minute is evaluated
/// once it has settled, exactly once however often the ruler ticks, in order, and a failed read is retried.
/// </summary>
public sealed class AlertRulerTests : IAsyncLifetime
{
    private static readonly DateTimeOffset s_noon = new(2026, 3, 2, 12, 0, 0, TimeSpan.Zero);
    private static readonly AlertRulerOptions s_options = new() { Interval = TimeSpan.FromSeconds(5), Settle = TimeSpan.FromSeconds(45) };
    private readonly FakeTimeProvider _time = new(s_noon);
    private readonly RecordingAlertSink _sink = new();
    private ICostStore _store = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync() => _store = await DuckDbCostStore.OpenAsync(":memory:", ct: Ct);

    public async ValueTask DisposeAsync() => await _store.DisposeAsync();

    private static AlertRule SpendAbove(decimal usdPerHour, TimeSpan? @for = null) =>
        new() { Name = "runaway", Kind = AlertRuleKind.SpendRate, AboveUsdPerHour = usdPerHour, For = @for ?? TimeSpan.Zero };

    /// <summary>One minute of job:w burning <paramref name="usdPerHour"/> on its node.</summary>
    private Task BurnAsync(DateTimeOffset minute, long usdPerHour, string resource = "node-a", CapacityType capacity = CapacityType.OnDemand) =>
        _store.WriteAsync([SomeLines.Line(minute, costNanos: usdPerHour * Money.NanosPerDollar / 60, workloadId: "job:w", resourceId: resource, capacity: capacity)], Ct);

    private AlertRuler Ruler(params AlertRule[] rules) => new(_store, new AlertEngine(rules, _sink), s_options, _time, startAt: s_noon);

    [Fact]
    public async Task A_minute_is_evaluated_only_once_it_has_settled_and_only_once_however_often_the_ruler_ticks()
    {
        var ruler = Ruler(SpendAbove(20));
        await BurnAsync(s_noon, 30);

        // 12:01:44: the 12:00 minute ended 44 s ago, one short of settled.
        _time.SetUtcNow(s_noon.AddSeconds(104));
        Assert.Equal(0, await ruler.TickAsync(Ct));
        Assert.Empty(_sink.All);
        Assert.Equal(s_noon, ruler.EvaluatedThrough);

        _time.SetUtcNow(s_noon.AddSeconds(105));
        Assert.Equal(1, await ruler.TickAsync(Ct));
        var fired = Assert.Single(_sink.All);
        Assert.Equal(AlertState.Firing, fired.State);
        Assert.Equal("job:w", fired.Labels["workload"]);

        // Ticks every 5 s for the rest of the minute, and the same minute re-rated late with more: nothing is evaluated again.
        await BurnAsync(s_noon, 90);
        for (var t = 110; t < 165; t += 5)
        {
            _time.SetUtcNow(s_noon.AddSeconds(t));
            Assert.Equal(0, await ruler.TickAsync(Ct));
        }
        Assert.Single(_sink.All);
        Assert.Equal(1, ruler.MinutesEvaluated);
        Assert.Equal(s_noon.AddMinutes(1), ruler.EvaluatedThrough);

        // 12:01 burns on (no repeat within the repeat interval); 12:02 has no rows: the alert resolves, once.
        await BurnAsync(s_noon.AddMinutes(1), 30);
        for (var t = 165; t <= 300; t += 5)
        {
            _time.SetUtcNow(s_noon.AddSeconds(t));
            await ruler.TickAsync(Ct);
        }
        Assert.Equal([AlertState.Firing, AlertState.Resolved], _sink.All.Select(n => n.State));
        Assert.Equal(4, ruler.MinutesEvaluated); // 12:00 to 12:03, each once
    }

    [Fact]
    public async Task Minutes_that_settled_while_the_ruler_was_behind_are_evaluated_in_order_so_for_counts_minutes_not_ticks()
    {
        var ruler = Ruler(SpendAbove(20, @for: TimeSpan.FromMinutes(3)));
        for (var m = 0; m < 6; m++)
            await BurnAsync(s_noon.AddMinutes(m), 30);

        // One tick long after: six settled minutes, evaluated in order; the condition held from 12:00, so it fires at the
        // end of 12:02 (3 minutes), once.
        _time.SetUtcNow(s_noon.AddMinutes(7));
        Assert.Equal(6, await ruler.TickAsync(Ct));
        var fired = Assert.Single(_sink.All);
        Assert.Equal(s_noon, fired.StartsAt);
        Assert.Equal(0, await ruler.TickAsync(Ct));
        Assert.Single(_sink.All);
    }

    [Fact]
    public async Task A_failed_read_leaves_the_minutes_for_the_next_tick()
    {
        var flaky = new FailingStore(_store);
        var ruler = new AlertRuler(flaky, new AlertEngine([SpendAbove(20)], _sink), s_options, _time, startAt: s_noon);
        await BurnAsync(s_noon, 30);
        _time.SetUtcNow(s_noon.AddMinutes(2));

        flaky.Failing = true;
        await Assert.ThrowsAsync<IOException>(() => ruler.TickAsync(Ct));
        Assert.Equal(s_noon, ruler.EvaluatedThrough);
        Assert.Empty(_sink.All);

        flaky.Failing = false;
        Assert.Equal(1, await ruler.TickAsync(Ct));
        Assert.Single(_sink.All);
    }

    [Fact]
    public async Task A_node_whose_rows_turn_from_spot_to_on_demand_is_a_capacity_fallback()
    {
        var ruler = Ruler(new AlertRule { Name = "fallback", Kind = AlertRuleKind.CapacityFallback });
        await BurnAsync(s_noon, 10, capacity: CapacityType.Spot);
        await BurnAsync(s_noon.AddMinutes(1), 10, capacity: CapacityType.Spot);
        await BurnAsync(s_noon.AddMinutes(2), 30, capacity: CapacityType.OnDemand);

        _time.SetUtcNow(s_noon.AddMinutes(3).AddSeconds(45));
        Assert.Equal(3, await ruler.TickAsync(Ct));

        var fired = Assert.Single(_sink.All);
        Assert.Equal(AlertState.Firing, fired.State);
        Assert.Equal("job:w", fired.Labels["workload"]);
        Assert.Equal(s_noon.AddMinutes(2), fired.StartsAt);
    }

    [Fact]
    public async Task Without_a_start_the_ruler_begins_at_the_newest_settled_minute()
    {
        var ruler = new AlertRuler(_store, new AlertEngine([SpendAbove(20)], _sink), s_options, _time);
        await BurnAsync(s_noon, 30); // long settled when the ruler starts: history is not replayed into alerts
        await BurnAsync(s_noon.AddMinutes(9), 30);
        _time.SetUtcNow(s_noon.AddMinutes(10).AddSeconds(50));

        Assert.Equal(1, await ruler.TickAsync(Ct));
        Assert.Equal(s_noon.AddMinutes(10), ruler.EvaluatedThrough);
        Assert.Equal(s_noon.AddMinutes(10), Assert.Single(_sink.All).EvidenceAt);
    }

    /// <summary>A store whose ledger reads fail while <see cref="Failing"/>.</summary>
    private sealed class FailingStore(ICostStore inner) : ICostStore
    {
        public bool Failing { get; set; }
        public Task MigrateAsync(CancellationToken cancellationToken = default) => inner.MigrateAsync(cancellationToken);
        public Task WriteAsync(IReadOnlyList<CostLine> lines, CancellationToken cancellationToken = default) => inner.WriteAsync(lines, cancellationToken);
        public Task<IReadOnlyList<CostLine>> GetLinesAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default) =>
            Failing ? throw new IOException("connection refused") : inner.GetLinesAsync(from, to, cancellationToken);
        public Task UpsertWorkloadsAsync(IReadOnlyList<WorkloadRecord> workloads, CancellationToken cancellationToken = default) => inner.UpsertWorkloadsAsync(workloads, cancellationToken);
        public Task WriteWorkAsync(IReadOnlyList<WorkMinute> work, CancellationToken cancellationToken = default) => inner.WriteWorkAsync(work, cancellationToken);
        public Task<IReadOnlyList<CostReportRow>> QueryCostsAsync(CostQuery query, CancellationToken cancellationToken = default) => inner.QueryCostsAsync(query, cancellationToken);
        public Task<IReadOnlyList<WorkloadRecord>> GetWorkloadsAsync(IReadOnlyCollection<string>? ids = null, CancellationToken cancellationToken = default) => inner.GetWorkloadsAsync(ids, cancellationToken);
        public Task<IReadOnlyList<WorkTotal>> GetWorkTotalsAsync(DateTimeOffset from, DateTimeOffset to, IReadOnlyCollection<string>? workloadIds = null, CancellationToken cancellationToken = default) => inner.GetWorkTotalsAsync(from, to, workloadIds, cancellationToken);
        public Task<(DateTimeOffset First, DateTimeOffset Last)?> GetLedgerSpanAsync(CancellationToken cancellationToken = default) => inner.GetLedgerSpanAsync(cancellationToken);
        public Task WriteBillingAsync(IReadOnlyList<Burnrate.Billing.BillingLine> lines, string sourceFile, CancellationToken cancellationToken = default) => inner.WriteBillingAsync(lines, sourceFile, cancellationToken);
        public Task<IReadOnlyList<Burnrate.Billing.BillingLine>> QueryBillingAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default) => inner.QueryBillingAsync(from, to, cancellationToken);
        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
