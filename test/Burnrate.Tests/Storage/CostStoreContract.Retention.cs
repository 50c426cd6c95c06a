using Burnrate.Storage;

namespace Burnrate.Tests.Storage;

/// <summary>Retention (<c>storage.retention</c>) on every store: what goes, and that reports over old ranges keep their totals.</summary>
public abstract partial class CostStoreContract
{
    private static readonly DateTimeOffset s_retentionStart = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly DateTimeOffset s_retentionEnd = new(2025, 4, 16, 0, 0, 0, TimeSpan.Zero);
    private static readonly DateTimeOffset s_retentionNow = new(2025, 5, 10, 12, 34, 0, TimeSpan.Zero);

    /// <summary>A line at 00:07 on the first day, then a dozen random ones a day for 105 days.</summary>
    private static List<Burnrate.Rating.CostLine> RetentionLines()
    {
        var random = new Random(8);
        var lines = new Dictionary<(DateTimeOffset, string, string), Burnrate.Rating.CostLine>
        {
            [(s_retentionStart.AddMinutes(7), "node-0", "a")] = SomeLines.Line(s_retentionStart.AddMinutes(7), costNanos: 123_456_789, team: "a", resourceId: "node-0"),
        };
        string[] teams = ["a", "b", "c", "d"];
        for (var day = s_retentionStart; day < s_retentionEnd; day = day.AddDays(1))
        {
            for (var i = 0; i < 12; i++)
            {
                var minute = day.AddMinutes(random.Next(8, 1440));
                var resource = "node-" + random.Next(6);
                var team = teams[random.Next(teams.Length)];
                lines[(minute, resource, team)] = SomeLines.Line(minute, costNanos: random.NextInt64(1, 9_000_000_000), team: team, resourceId: resource,
                    workloadId: "w-" + team, quantity: random.Next(0, 60_000_000) / 1_000_000m);
            }
        }
        return [.. lines.Values];
    }

    private static async Task<List<string>> RetentionReportsAsync(ICostStore store, bool hourly)
    {
        var seen = new List<string>();
        TimeSpan?[] steps = hourly ? [null, TimeSpan.FromDays(1), TimeSpan.FromDays(7), TimeSpan.FromHours(1), TimeSpan.FromHours(6)] : [null, TimeSpan.FromDays(1), TimeSpan.FromDays(7)];
        foreach (var step in steps)
        {
            var query = new CostQuery { From = s_retentionStart, To = s_retentionEnd, By = [CostDimension.Team], Step = step };
            seen.Add($"step {step}");
            seen.AddRange(SomeLines.Canonical(await store.QueryCostsAsync(query, Ct)));
        }
        if (hourly)
        {
            seen.AddRange(SomeLines.Canonical(await store.QueryCostsAsync(new CostQuery
            {
                From = new DateTimeOffset(2025, 1, 15, 5, 0, 0, TimeSpan.Zero),
                To = new DateTimeOffset(2025, 4, 10, 17, 0, 0, TimeSpan.Zero),
                By = [CostDimension.Team, CostDimension.Resource, CostDimension.Idle],
            }, Ct)));
        }
        return seen;
    }

    private static List<string> TotalsByTeam(IEnumerable<CostReportRow> rows) =>
        [.. rows.GroupBy(r => r.Keys[0]).Select(g => $"{g.Key}|{g.Sum(r => r.Cost.Nanos)}|{g.Sum(r => r.IdleCost.Nanos)}|{g.Sum(r => r.GpuSeconds):0.000000}").Order(StringComparer.Ordinal)];

    [Fact]
    public async Task Retention_drops_old_minutes_then_hours_and_reports_keep_their_totals_from_the_rollups()
    {
        var store = await OpenAsync();
        var retention = Assert.IsAssignableFrom<ILedgerRetention>(store);
        var lines = RetentionLines();
        var random = new Random(9);
        foreach (var batch in lines.GroupBy(l => (l.Minute, l.ResourceId)).OrderBy(_ => random.Next()).Chunk(400))
            await store.WriteAsync([.. batch.SelectMany(g => g)], Ct);
        var oldWork = s_retentionStart.AddDays(2);
        var recentWork = s_retentionEnd.AddDays(-1);
        await store.WriteWorkAsync([new WorkMinute(oldWork, "w-a", "tokens", 1000), new WorkMinute(recentWork, "w-a", "tokens", 7)], Ct);
        var everything = new CostQuery { From = s_retentionStart, To = s_retentionEnd, By = [CostDimension.Team] };
        Assert.Equal(SomeLines.Canonical(SomeLines.BruteForce(lines, everything)), SomeLines.Canonical(await store.QueryCostsAsync(everything, Ct)));
        var before = await RetentionReportsAsync(store, hourly: true);
        Assert.Equal((s_retentionStart.AddMinutes(7), lines.Max(l => l.Minute)), await store.GetLedgerSpanAsync(Ct));

        // Minutes for 35 days, hours kept.
        var run = await retention.ApplyRetentionAsync(new RetentionPolicy { Minutes = TimeSpan.FromDays(35), Hours = TimeSpan.FromDays(400) }, s_retentionNow, Ct);

        var limit = s_retentionNow.UtcDateTime.AddDays(-35);
        var horizon = Assert.NotNull(run.Horizons.Minutes);
        // DuckDB cuts at the hour, ClickHouse at the month partition: never after the limit, never a month before it.
        Assert.InRange(horizon, limit.AddDays(-31), limit);
        Assert.Equal(0, horizon.Ticks % TimeSpan.TicksPerHour);
        Assert.Empty(await store.GetLinesAsync(s_retentionStart, horizon, Ct));
        var kept = lines.Where(l => l.Minute >= horizon).ToList();
        Assert.Equal(kept.Count, (await store.GetLinesAsync(horizon, s_retentionEnd, Ct)).Count);
        Assert.Equal(lines.Count - kept.Count, run.Rows["cost_minutes"]);
        Assert.Equal(0, run.Rows["cost_hourly"]);
        Assert.True(lines.Count - kept.Count > 500, "the test drops most minutes");
        // Hour and day resolution: unchanged to the nano-dollar.
        Assert.Equal(before, await RetentionReportsAsync(store, hourly: true));
        // A bound inside the dropped minutes moves up to the next whole hour: an hourly row counts when it starts in range.
        var ragged = new CostQuery { From = new DateTimeOffset(2025, 1, 20, 10, 23, 0, TimeSpan.Zero), To = new DateTimeOffset(2025, 4, 14, 10, 23, 0, TimeSpan.Zero), By = [CostDimension.Team] };
        Assert.Equal(SomeLines.Canonical(SomeLines.BruteForce(lines, ragged with { From = new DateTimeOffset(2025, 1, 20, 11, 0, 0, TimeSpan.Zero) })),
            SomeLines.Canonical(await store.QueryCostsAsync(ragged, Ct)));
        // Both bounds inside: the hour that holds the end counts whole; a 13-minute step buckets hours by their start.
        var old = new CostQuery { From = new DateTimeOffset(2025, 1, 20, 10, 23, 0, TimeSpan.Zero), To = new DateTimeOffset(2025, 2, 10, 15, 47, 0, TimeSpan.Zero), By = [CostDimension.Team] };
        var oldHours = old with { From = new DateTimeOffset(2025, 1, 20, 11, 0, 0, TimeSpan.Zero), To = new DateTimeOffset(2025, 2, 10, 16, 0, 0, TimeSpan.Zero) };
        Assert.Equal(SomeLines.Canonical(SomeLines.BruteForce(lines, oldHours)), SomeLines.Canonical(await store.QueryCostsAsync(old, Ct)));
        Assert.Equal(TotalsByTeam(SomeLines.BruteForce(lines, oldHours)), TotalsByTeam(await store.QueryCostsAsync(old with { Step = TimeSpan.FromMinutes(13) }, Ct)));
        Assert.Equal((s_retentionStart, lines.Max(l => l.Minute)), await store.GetLedgerSpanAsync(Ct));
        // A late line for a dropped minute is not written: it would rebuild its hour from minutes that are gone.
        await store.WriteAsync([SomeLines.Line(s_retentionStart.AddHours(5).AddMinutes(1), costNanos: 5_000_000_000, team: "a")], Ct);
        Assert.Equal(before, await RetentionReportsAsync(store, hourly: true));
        // Idempotent.
        var again = await retention.ApplyRetentionAsync(new RetentionPolicy { Minutes = TimeSpan.FromDays(35), Hours = TimeSpan.FromDays(400) }, s_retentionNow, Ct);
        Assert.Equal(0, again.TotalRows);

        // Then hours for 60 days: day resolution still unchanged.
        var dayBefore = await RetentionReportsAsync(store, hourly: false);
        var second = await retention.ApplyRetentionAsync(new RetentionPolicy { Minutes = TimeSpan.FromDays(35), Hours = TimeSpan.FromDays(60) }, s_retentionNow, Ct);

        var hours = Assert.NotNull(second.Horizons.Hours);
        Assert.InRange(hours, s_retentionNow.UtcDateTime.AddDays(-60 - 31), s_retentionNow.UtcDateTime.AddDays(-60));
        Assert.True(second.Rows["cost_hourly"] > 0, "old hours dropped");
        Assert.Equal(1, second.Rows["work_minutes"]);
        Assert.Equal(dayBefore, await RetentionReportsAsync(store, hourly: false));
        Assert.Equal(SomeLines.Canonical(SomeLines.BruteForce(lines, everything)), SomeLines.Canonical(await store.QueryCostsAsync(everything, Ct)));
        Assert.Equal(SomeLines.Canonical(SomeLines.BruteForce(lines, ragged with { From = new DateTimeOffset(2025, 1, 21, 0, 0, 0, TimeSpan.Zero) })),
            SomeLines.Canonical(await store.QueryCostsAsync(ragged, Ct)));
        var oldDays = old with { From = new DateTimeOffset(2025, 1, 21, 0, 0, 0, TimeSpan.Zero), To = new DateTimeOffset(2025, 2, 11, 0, 0, 0, TimeSpan.Zero) };
        Assert.Equal(SomeLines.Canonical(SomeLines.BruteForce(lines, oldDays)), SomeLines.Canonical(await store.QueryCostsAsync(old, Ct)));
        Assert.Equal(TotalsByTeam(SomeLines.BruteForce(lines, oldDays)), TotalsByTeam(await store.QueryCostsAsync(old with { Step = TimeSpan.FromHours(1) }, Ct)));
        Assert.Empty(await store.GetWorkTotalsAsync(s_retentionStart, hours, cancellationToken: Ct));
        Assert.Equal([new WorkTotal("w-a", "tokens", 7)], await store.GetWorkTotalsAsync(s_retentionStart, s_retentionEnd, cancellationToken: Ct));
        Assert.Equal((s_retentionStart, lines.Max(l => l.Minute)), await store.GetLedgerSpanAsync(Ct));
    }
}
