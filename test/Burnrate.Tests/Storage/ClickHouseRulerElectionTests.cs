using Burnrate.Alerting;
using Burnrate.Pricing;
using Burnrate.Storage.ClickHouse;
using Burnrate.Tests.Alerting;
using Microsoft.Extensions.Time.Testing;

namespace Burnrate.Tests.Storage;

/// <summary>
/// Two rulers (<c>serve --role ruler</c> twice, each with its own connection, as two processes) over one real ClickHouse
/// server on one virtual clock: only the leader delivers; when its beats stop the other takes over after the lease,
/// resumes from the checkpoint in ClickHouse, and resolves the alert the first one fired, once.
/// </summary>
public sealed class ClickHouseRulerElectionTests(SingleClickHouse servers) : IClassFixture<SingleClickHouse>, IAsyncDisposable
{
    private static readonly DateTimeOffset s_noon = new(2026, 3, 2, 12, 0, 0, TimeSpan.Zero);
    private readonly List<Func<ValueTask>> _cleanup = [];

    [Fact]
    public async Task Only_the_leader_delivers_and_the_standby_takes_over_from_the_checkpoint_in_clickhouse()
    {
        var ct = TestContext.Current.CancellationToken;
        var peer = await servers.GetAsync(ct);
        var options = peer.NewOptions();
        _cleanup.Add(() => new ValueTask(peer.DropAsync(options.Database)));
        var time = new FakeTimeProvider(s_noon);
        var writer = await ClickHouseCostStore.OpenAsync(options, ct: ct);
        _cleanup.Add(() => writer.DisposeAsync());
        for (var m = 0; m < 4; m++)
        {
            await writer.WriteAsync([SomeLines.Line(s_noon.AddMinutes(m), costNanos: 30 * Money.NanosPerDollar / 60, workloadId: "job:w")], ct);
        }

        var rule = new AlertRule { Name = "runaway", Kind = AlertRuleKind.SpendRate, AboveUsdPerHour = 20 };
        RecordingAlertSink sinkA = new(), sinkB = new();
        async Task<AlertRuler> RulerAsync(string id, RecordingAlertSink sink)
        {
            var store = await ClickHouseCostStore.OpenAsync(options, ct: ct);
            _cleanup.Add(() => store.DisposeAsync());
            return new AlertRuler(store, new AlertEngine([rule], sink), new AlertRulerOptions { RulerId = id }, time, startAt: s_noon);
        }
        var a = await RulerAsync("ruler-a", sinkA);
        var b = await RulerAsync("ruler-b", sinkB);

        for (var t = s_noon.AddSeconds(5); t <= s_noon.AddMinutes(3); t = t.AddSeconds(5))
        {
            time.SetUtcNow(t);
            await a.TickAsync(ct);
            Assert.Equal(0, await b.TickAsync(ct));
        }
        Assert.True(a.IsLeader);
        Assert.False(b.IsLeader);
        Assert.Equal(AlertState.Firing, Assert.Single(sinkA.All).State);
        Assert.Empty(sinkB.All);

        // a stops; b leads after the lease and goes on from a's cursor; the burn stops after 12:03.
        var evaluatedByA = a.MinutesEvaluated;
        for (var t = time.GetUtcNow().AddSeconds(5); t <= s_noon.AddMinutes(6); t = t.AddSeconds(5))
        {
            time.SetUtcNow(t);
            await b.TickAsync(ct);
        }
        Assert.True(b.IsLeader);
        var resolved = Assert.Single(sinkB.All);
        Assert.Equal(AlertState.Resolved, resolved.State);
        Assert.Equal(sinkA.All[0].Fingerprint, resolved.Fingerprint);
        Assert.Equal(s_noon.AddMinutes(5), b.EvaluatedThrough);
        Assert.Equal(5, evaluatedByA + b.MinutesEvaluated);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var c in Enumerable.Reverse(_cleanup))
            await c();
    }
}
