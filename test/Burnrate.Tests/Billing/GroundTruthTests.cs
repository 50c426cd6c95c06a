using System.Net.Http.Headers;
using System.Text.Json;
using Burnrate.Billing;
using Burnrate.Cli;
using Burnrate.Configuration;
using Burnrate.Pricing;
using Burnrate.Pricing.Terms;
using Burnrate.Rating;
using Burnrate.Server;
using Burnrate.Simulation;
using Burnrate.Storage;
using Burnrate.Storage.ClickHouse;
using Burnrate.Storage.DuckDb;
using Burnrate.Tests.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Burnrate.Tests.Billing;

/// <summary>
/// Issue 6's ground truth: a simulated month billed by the simulator with an 8 % negotiated discount (not in
/// Burnrate's config), a savings plan covering 60 % of the baseline (in the config), spot price moves and egress.
/// </summary>
public sealed class GroundTruthTests(SingleClickHouse clickHouse) : IClassFixture<SingleClickHouse>, IDisposable
{
    private static readonly DateTimeOffset s_start = new(2026, 3, 2, 0, 0, 0, TimeSpan.Zero); // a Monday
    private readonly string _directory = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "burnrate-truth-" + Guid.NewGuid().ToString("N"))).FullName;

    public void Dispose()
    {
        if (Directory.Exists(_directory))
            Directory.Delete(_directory, recursive: true);
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private sealed class Month
    {
        public required PriceBook Book { get; init; }
        public required IRateCard RateCard { get; init; }
        public required GroundTruthMonth Fleet { get; init; }
        public required PricingTerms Known { get; init; }
        public required PricingTerms True { get; init; }
        public required RatingEngine Engine { get; init; }
        public required ICostStore Store { get; init; }
        public int Next { get; set; }

        /// <summary>Rates [from, to) minute by minute, applying each event before the minute it falls in.</summary>
        public async Task RateAsync(DateTimeOffset from, DateTimeOffset to)
        {
            var events = Fleet.Events();
            var batch = new List<CostLine>();
            for (var minute = from; minute < to; minute = minute.AddMinutes(1))
            {
                var end = minute.AddMinutes(1);
                while (Next < events.Count && events[Next].Time < end)
                    Engine.Apply(events[Next++]);
                batch.AddRange(Engine.RateMinute(minute).Lines);
                if (batch.Count >= 100_000)
                {
                    await Store.WriteAsync(batch, Ct);
                    batch.Clear();
                }
            }
            await Store.WriteAsync(batch, Ct);
        }

        /// <summary>The ledger's cost per (workload, day) over [from, to).</summary>
        public async Task<Dictionary<(string, DateTime), decimal>> LedgerByWorkloadDayAsync(DateTimeOffset from, DateTimeOffset to)
        {
            var rows = await Store.QueryCostsAsync(new CostQuery { From = from, To = to, By = [CostDimension.Workload], Step = TimeSpan.FromDays(1) }, Ct);
            // Per workload: a savings plan's unused commitment (booked as idle) belongs to none.
            return rows.Where(r => r.Cost.Nanos != 0 && r.Keys[0].Length > 0).ToDictionary(r => (r.Keys[0], r.BucketStart!.Value.UtcDateTime.Date), r => r.Cost.Dollars);
        }
    }

    private static async Task<Month> PlanAsync(int days, string database = ":memory:", ICostStore? store = null, decimal baselineShare = 0.6m)
    {
        var (book, rateCard) = PricingSetup.Load(new BurnrateConfig());
        var fleet = GroundTruthMonth.Plan(s_start, days, seed: 6, book);
        var baselinePerHour = book.Find("aws", "us-east-1", "", "p4d.24xlarge", CapacityType.OnDemand, s_start)!.PricePerHour * fleet.BaselineNodes;
        // The plan's commitment buys 60 % of the baseline at its 28 % discount.
        var plan = new SavingsPlan("compute-1y", "aws", decimal.Round(baselinePerHour * baselineShare * 0.72m, 4), 28m, [], []);
        var known = new PricingTerms { SavingsPlans = [plan] };
        var truth = known with { Discounts = [new NegotiatedDiscount("aws", 8m, [], AppliesToNetwork: true)] };
        store ??= await DuckDbCostStore.OpenAsync(database, ct: Ct);
        return new Month
        {
            Book = book,
            RateCard = rateCard,
            Fleet = fleet,
            Known = known,
            True = truth,
            Engine = new RatingEngine(book, rateCard, options: new RatingOptions { Terms = known }),
            Store = store,
        };
    }

    private Dictionary<(string, DateTime), decimal> Bill(Month month, DateTimeOffset from, DateTimeOffset to, out string path)
    {
        path = Path.Combine(_directory, $"bill-{from:yyyyMMdd}.focus.csv");
        using var writer = File.CreateText(path);
        return new(month.Fleet.WriteFocus(writer, from, to, month.Book, month.RateCard, month.True));
    }

    [Fact]
    public async Task After_reconciling_the_first_week_the_live_estimate_is_within_half_a_percent_per_workload_day()
    {
        var month = await PlanAsync(days: 28);
        await using var store = month.Store;
        var week1 = s_start.AddDays(7);
        var end = s_start.AddDays(28);

        await month.RateAsync(s_start, week1);
        var truth1 = Bill(month, s_start, week1, out var bill1);
        var import = await FocusImporter.ImportAsync(store, bill1, "week-1", cancellationToken: Ct);
        Assert.Equal(0, import.RowsSkipped);

        // Before calibration: the savings plan is known, the negotiated discount is not — the estimate is over the bill by about it.
        var ledger1 = await month.LedgerByWorkloadDayAsync(s_start, week1);
        Assert.Equal(truth1.Keys.OrderBy(k => k), ledger1.Keys.OrderBy(k => k));
        foreach (var (key, trueCost) in truth1)
            Assert.InRange((ledger1[key] - trueCost) / trueCost, 0.080m, 0.095m); // 1/0.92 − 1 = 8.7 %

        var calibrator = new Calibrator(store, month.Engine.Calibration, TimeProvider.System);
        var report = await Reconciler.ReconcileAsync(store, s_start, week1, calibrator, cancellationToken: Ct);
        var aws = Assert.Single(report.Providers);
        Assert.InRange(aws.EffectiveVsEstimate!.Value, -0.085m, -0.075m);
        var learned = calibrator.Result!.Learned;
        // One factor per (usage, instance type, capacity) the week used: p4d and g5 on demand, p5 spot, egress.
        Assert.Equal(
            ["compute g5.12xlarge on_demand", "compute p4d.24xlarge on_demand", "compute p5.48xlarge spot", "network  on_demand"],
            learned.Select(f => $"{f.Usage.ToString().ToLowerInvariant()} {f.InstanceType} {f.Capacity.ToName()}").Order(StringComparer.Ordinal));
        Assert.All(learned, f => Assert.InRange(f.Factor, 0.915m, 0.925m));
        month.Engine.Calibration = month.Engine.Calibration.With(learned);

        // After: the following three weeks, rated live with the learned factors, against their bill.
        await month.RateAsync(week1, end);
        var truth = Bill(month, week1, end, out _);
        var ledger = await month.LedgerByWorkloadDayAsync(week1, end);
        Assert.Equal(truth.Keys.OrderBy(k => k), ledger.Keys.OrderBy(k => k));
        var worst = 0m;
        foreach (var (key, trueCost) in truth)
        {
            var error = Math.Abs(ledger[key] - trueCost) / trueCost;
            Assert.True(error <= 0.005m, $"{key}: estimate {ledger[key]} vs bill {trueCost} ({error:P3})");
            worst = Math.Max(worst, error);
        }
        TestContext.Current.TestOutputHelper?.WriteLine($"{truth.Count} workload-days, worst error {worst:P4}");
    }

    [Fact]
    public async Task A_savings_plans_unused_commitment_meets_its_lines_in_the_bill_and_configured_credits_are_listed()
    {
        // A plan bigger than the baseline (150 %): every hour leaves commitment unused, booked in the ledger as
        // savings-plan/compute-1y and billed by the simulator under the plan's ARN.
        var month = await PlanAsync(days: 2, baselineShare: 1.5m);
        await using var store = month.Store;
        var end = s_start.AddDays(2);
        await month.RateAsync(s_start, end);
        Bill(month, s_start, end, out var bill);
        await FocusImporter.ImportAsync(store, bill, "bill", cancellationToken: Ct);

        // Without the terms the two sides do not know each other.
        var blind = await Reconciler.ReconcileAsync(store, s_start, end, cancellationToken: Ct);
        Assert.Contains("savings-plan/compute-1y", Assert.Single(blind.UnmatchedLedger).Examples);
        Assert.Contains(Assert.Single(blind.UnmatchedBill).Examples, e => e.EndsWith(":savingsplan/compute-1y", StringComparison.Ordinal));
        Assert.Empty(blind.Credits);

        var terms = month.Known with
        {
            Credits =
            [
                new Credit("aws", 3000m, s_start, s_start.AddDays(30), "migration"),     // 2 of its 30 days: $200
                new Credit("aws", 70m, s_start.AddDays(1).AddHours(12), end.AddDays(3), "support"), // 12 of its 84 hours: $10
                new Credit("gcp", 500m, s_start.AddDays(-30), s_start, "before"),        // ended when the period began
            ],
        };
        var report = await Reconciler.ReconcileAsync(store, s_start, end, terms: terms, cancellationToken: Ct);

        Assert.Empty(report.UnmatchedBill);
        Assert.Empty(report.UnmatchedLedger);
        Assert.Equal(blind.MatchedResourceDays + 2, report.MatchedResourceDays); // the plan, on each of the two days
        var credit = Assert.Single(report.Credits);
        Assert.Equal(("aws", 210m, 0m, 0L, -210m), (credit.Provider, credit.Configured, credit.Billed, credit.BillLines, -credit.Missing));
        Assert.Equal(["migration", "support"], credit.Descriptions);
        Assert.Equal(blind.Providers, report.Providers); // the totals are the same either way
    }

    [Fact]
    public async Task Without_the_savings_plan_in_the_config_the_baseline_is_over_estimated_by_the_plans_discount()
    {
        // The savings plan in the config is what brings the covered baseline nodes to the bill: without it they read
        // 1/0.72 of their cost. (Checks the coverage goes to the longest-running nodes: three of five baseline nodes.)
        var month = await PlanAsync(days: 1);
        await using var store = month.Store;
        var engine = new RatingEngine(month.Book, month.RateCard, options: new RatingOptions());
        var withPlan = month.Engine;
        var day = s_start.AddDays(1);
        foreach (var e in month.Fleet.Events().Where(e => e.Time < day))
        {
            engine.Apply(e);
            withPlan.Apply(e);
        }
        var at = s_start.AddHours(12);
        var plain = engine.CurrentBurn(at).GroupBy(l => l.ResourceId).ToDictionary(g => g.Key, g => g.Sum(l => l.Rate.NanosPerHour));
        var covered = withPlan.CurrentBurn(at).GroupBy(l => l.ResourceId).ToDictionary(g => g.Key, g => g.Sum(l => l.Rate.NanosPerHour));
        for (var i = 0; i < 5; i++)
        {
            var id = $"i-base{i:D2}";
            var ratio = (decimal)covered[id] / plain[id];
            Assert.Equal(i < 3 ? 0.72m : 1m, decimal.Round(ratio, 6));
        }
        Assert.Equal(covered["i-spot0-01"], plain["i-spot0-01"]); // spot is never covered
        Assert.True(withPlan.UnspentCommitments["compute-1y"] < 0.01m);
    }

    [Fact]
    public async Task Posting_the_bill_to_a_running_server_calibrates_its_live_burn_and_keeps_the_factors()
    {
        var month = await PlanAsync(days: 2);
        await using var store = month.Store;
        var day1 = s_start.AddDays(1);
        await month.RateAsync(s_start, day1);
        Bill(month, s_start, day1, out var bill);
        var noon = day1.AddHours(12);
        foreach (var e in month.Fleet.Events().Skip(month.Next).TakeWhile(e => e.Time <= noon))
            month.Engine.Apply(e);
        using var pipeline = new CostPipeline(month.Engine, store);
        await using var app = BurnrateServer.Build(new BurnrateServerOptions
        {
            Listen = "127.0.0.1:0",
            Store = store,
            Time = new FakeTimeProvider(noon),
            ConfigureServices = s => s.AddSingleton(pipeline),
        });
        await app.StartAsync(Ct);
        using var client = new HttpClient { BaseAddress = new Uri(app.Urls.Single()) };

        var before = await BurnAsync(client);
        Assert.Equal(["provisional"], await StatusesAsync(client));
        using (var none = JsonDocument.Parse(await client.GetStringAsync("/api/v1/billing/calibration", Ct)))
            Assert.Equal(0, none.RootElement.GetProperty("factors").GetArrayLength());
        var content = new StreamContent(File.OpenRead(bill));
        content.Headers.ContentType = new MediaTypeHeaderValue("text/csv");
        using var posted = await client.PostAsync("/api/v1/billing/focus?name=day-1", content, Ct);
        Assert.Equal(System.Net.HttpStatusCode.OK, posted.StatusCode);
        using (var answer = JsonDocument.Parse(await posted.Content.ReadAsStringAsync(Ct)))
            Assert.Equal(4, answer.RootElement.GetProperty("calibration").GetProperty("learned").GetArrayLength());

        // From now on the live burn is the bill's: about 8 % below the list-based rate, every line.
        var after = await BurnAsync(client);
        Assert.InRange(after / before, 0.915m, 0.925m);
        using var calibration = JsonDocument.Parse(await client.GetStringAsync("/api/v1/billing/calibration", Ct));
        var factors = calibration.RootElement.GetProperty("factors").EnumerateArray().ToList();
        Assert.Equal(4, factors.Count);
        Assert.All(factors, f => Assert.InRange(decimal.Parse(f.GetProperty("factor").GetString()!, System.Globalization.CultureInfo.InvariantCulture), 0.915m, 0.925m));
        var period = Assert.Single(calibration.RootElement.GetProperty("reconciled_periods").EnumerateArray());
        Assert.Equal("aws", period.GetProperty("provider").GetString());
        Assert.Equal("2026-03-02T00:00:00Z", period.GetProperty("from").GetString());
        Assert.Equal(["reconciled"], await StatusesAsync(client)); // the FOCUS export marks day 1's rows
        var metrics = await client.GetStringAsync("/metrics", Ct);
        Assert.Contains("burnrate_calibration_factor{provider=\"aws\",usage=\"compute\",instance_type=\"p5.48xlarge\",capacity_type=\"spot\"} 0.9", metrics, StringComparison.Ordinal);
        Assert.Contains("burnrate_savings_plan_unspent_dollars_per_hour{plan=\"compute-1y\"} 0", metrics, StringComparison.Ordinal);
        // Kept in the store: what `serve` loads at its next start.
        Assert.Equal(4, (await Calibrations.LoadAsync(store, Ct)).Factors.Count);

        static async Task<string[]> StatusesAsync(HttpClient client)
        {
            var csv = (await client.GetStringAsync("/api/v1/focus?from=2026-03-02T00:00:00Z&to=2026-03-03T00:00:00Z", Ct)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(csv[0].Split(',').Length - 1, Array.IndexOf(csv[0].Split(','), "x_BurnrateStatus")); // the last column
            return [.. csv.Skip(1).Select(line => line[(line.LastIndexOf(',') + 1)..].Trim('\r', '"')).Distinct()];
        }

        static async Task<decimal> BurnAsync(HttpClient client)
        {
            using var burn = JsonDocument.Parse(await client.GetStringAsync("/api/v1/burn", Ct));
            return decimal.Parse(burn.RootElement.GetProperty("total_usd_per_hour").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Burnrate_reconcile_learns_and_stores_the_calibration_unless_told_not_to(bool noCalibrate)
    {
        var data = Path.Combine(_directory, "data");
        var month = await PlanAsync(days: 1, CliServices.LedgerPath(data));
        var day1 = s_start.AddDays(1);
        await using (month.Store)
            await month.RateAsync(s_start, day1);
        Bill(month, s_start, day1, out var bill);
        var output = new StringWriter();
        var error = new StringWriter();
        var real = Composition.CreateServices();
        var services = new CliServices { OpenStore = real.OpenStore, LoadPriceBook = real.LoadPriceBook, Out = output, Error = error };

        string[] args = ["reconcile", bill, "--data", data, "--format", "json", .. (noCalibrate ? new[] { "--no-calibrate" } : [])];
        var exit = await BurnrateCli.InvokeAsync(services, args, Ct);

        Assert.True(exit == 0, error.ToString());
        using var json = JsonDocument.Parse(output.ToString());
        var calibration = json.RootElement.GetProperty("calibration");
        await using var store = await DuckDbCostStore.OpenAsync(CliServices.LedgerPath(data), ct: Ct);
        var kept = await Calibrations.LoadAsync(store, Ct);
        if (noCalibrate)
        {
            Assert.Equal(JsonValueKind.Null, calibration.ValueKind);
            Assert.True(kept.IsEmpty);
        }
        else
        {
            Assert.Equal(4, calibration.GetProperty("learned").GetArrayLength());
            Assert.Equal(4, kept.Factors.Count);
        }
    }
    [Fact]
    public async Task Reconcile_and_report_use_the_clickhouse_ledger_the_config_names()
    {
        var peer = await clickHouse.GetAsync(Ct);
        var options = peer.NewOptions();
        try
        {
            var month = await PlanAsync(days: 1, store: await ClickHouseCostStore.OpenAsync(options, ct: Ct));
            var day1 = s_start.AddDays(1);
            decimal ledger;
            await using (month.Store)
            {
                await month.RateAsync(s_start, day1);
                ledger = (await month.Store.QueryCostsAsync(new CostQuery { From = s_start, To = day1, By = [] }, Ct)).Sum(r => r.Cost.Dollars);
            }
            Bill(month, s_start, day1, out var bill);
            var config = Path.Combine(_directory, "burnrate.yaml");
            await File.WriteAllTextAsync(config, $"""
                storage:
                  store: clickhouse
                  clickhouse:
                    urls: [{string.Join(", ", options.Urls)}]
                    database: {options.Database}
                """, Ct);
            var data = Path.Combine(_directory, "no-duckdb-here");
            var real = Composition.CreateServices();

            var (reconcileExit, reconciled, reconcileError) = await CliAsync(["reconcile", bill, "--config", config, "--data", data, "--format", "json"]);
            var (reportExit, report, reportError) = await CliAsync(["report", "--config", config, "--data", data, "--by", "team", "--format", "json",
                "--from", s_start.ToString("O"), "--to", day1.ToString("O")]);

            Assert.True(reconcileExit == 0, reconcileError);
            Assert.True(reportExit == 0, reportError);
            using (var json = JsonDocument.Parse(reconciled))
                Assert.Equal(4, json.RootElement.GetProperty("calibration").GetProperty("learned").GetArrayLength());
            using (var json = JsonDocument.Parse(report))
            {
                var total = json.RootElement.EnumerateArray()
                    .Sum(r => decimal.Parse(r.GetProperty("cost_usd").GetString()!, System.Globalization.CultureInfo.InvariantCulture));
                Assert.Equal(ledger, total);
            }
            Assert.False(Directory.Exists(data), "the embedded store was opened");
            // The factors and the reconciled day are in ClickHouse, where `serve` on this config loads them.
            await using var reopened = await ClickHouseCostStore.OpenAsync(options, ct: Ct);
            Assert.Equal(4, (await Calibrations.LoadAsync(reopened, Ct)).Factors.Count);
            Assert.Equal(s_start, Assert.Single(await reopened.GetReconciledPeriodsAsync(Ct)).From);

            async Task<(int Exit, string Out, string Error)> CliAsync(string[] args)
            {
                var output = new StringWriter();
                var error = new StringWriter();
                var exit = await BurnrateCli.InvokeAsync(new CliServices { OpenStore = real.OpenStore, LoadPriceBook = real.LoadPriceBook, Out = output, Error = error }, args, Ct);
                return (exit, output.ToString(), error.ToString());
            }
        }
        finally
        {
            await peer.DropAsync(options.Database);
        }
    }
}
