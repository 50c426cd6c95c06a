using System.Globalization;
using System.Text.Json;
using Burnrate.Tests.Support;
using Microsoft.Playwright;

namespace Burnrate.Tests.Dashboard;

/// <summary>
/// The dashboard in real headless Chromium against a server rating scenario S1 from the simulator: the pages load
/// without console errors, the numbers on the page are the API's to the last digit (data-value), a live update
/// arrives, and the drill-down from team to workload works. Screenshots go to TestResults/screenshots.
/// </summary>
public sealed class DashboardBrowserTests(DashboardFixture fixture) : IClassFixture<DashboardFixture>
{
    private const string Runaway = "skypilot:managed-4711";

    private static PageWaitForSelectorOptions Visible { get; } = new() { Timeout = 15_000 };

    [Fact]
    public async Task Every_page_loads_without_console_errors()
    {
        var (context, page, errors) = await OpenAsync("#/");
        await using var closing = context;
        var routes = new (string Hash, string TestId)[]
        {
            ("#/", "overview"),
            ("#/chargeback/team", "chargeback"),
            ("#/chargeback/project", "chargeback"),
            ("#/chargeback/user?range=today", "chargeback"),
            ("#/fleet", "fleet"),
            ("#/billing", "billing"),
            ("#/workload/" + Uri.EscapeDataString(Runaway), "workload"),
        };
        foreach (var (hash, testId) in routes)
        {
            await page.GotoAsync(fixture.Url + "/?refresh=1" + hash);
            await page.WaitForSelectorAsync($"[data-testid={testId}]", Visible);
            Assert.Equal(0, await page.Locator("[data-testid=error]").CountAsync());
            await ScreenshotAsync(page, "page-" + testId + "-" + string.Concat(hash.Where(char.IsAsciiLetterOrDigit)));
        }
        Assert.Empty(errors);
    }

    [Fact]
    public async Task The_numbers_on_the_overview_are_the_apis_exactly()
    {
        var (context, page, errors) = await OpenAsync("#/");
        await using var closing = context;
        await page.WaitForSelectorAsync("[data-testid=burn-rate]", Visible);
        var at = DateTimeOffset.Parse((await page.GetAttributeAsync("[data-testid=overview]", "data-at"))!, CultureInfo.InvariantCulture);
        Assert.Equal(fixture.Clock.GetUtcNow(), at);

        using var burn = await fixture.GetJsonAsync("/api/v1/burn");
        var midnight = new DateTimeOffset(at.Year, at.Month, at.Day, 0, 0, 0, TimeSpan.Zero);
        var firstOfMonth = new DateTimeOffset(at.Year, at.Month, 1, 0, 0, 0, TimeSpan.Zero);
        using var today = await fixture.GetJsonAsync($"/api/v1/costs?from={Rfc3339(midnight)}&to={Rfc3339(at)}");
        using var month = await fixture.GetJsonAsync($"/api/v1/costs?from={Rfc3339(firstOfMonth)}&to={Rfc3339(at)}");
        using var alerts = await fixture.GetJsonAsync("/api/v1/alerts");

        var rate = burn.RootElement.GetProperty("total_usd_per_hour").GetString()!;
        Assert.NotEqual(0m, decimal.Parse(rate, CultureInfo.InvariantCulture));
        Assert.Equal(rate, await ValueAsync(page, "burn-rate"));
        Assert.Equal(today.RootElement.GetProperty("total_usd").GetString(), await ValueAsync(page, "spend-today"));
        Assert.Equal(month.RootElement.GetProperty("total_usd").GetString(), await ValueAsync(page, "spend-month"));
        Assert.Equal(today.RootElement.GetProperty("idle_usd").GetString(), await ValueAsync(page, "idle-today"));

        // Forecast: month to date + current burn × hours left in the month, in whole nano-dollars (rounded down).
        var nextMonth = firstOfMonth.AddMonths(1);
        var msLeft = (decimal)(nextMonth - at).TotalMilliseconds;
        var forecastNanos = Nanos(month.RootElement.GetProperty("total_usd").GetString()!) + decimal.Floor(Nanos(rate) * msLeft / 3_600_000m);
        Assert.Equal((forecastNanos / 1_000_000_000m).ToString("F9", CultureInfo.InvariantCulture), await ValueAsync(page, "forecast"));

        var firing = alerts.RootElement.GetProperty("alerts").EnumerateArray().Count(a => a.GetProperty("state").GetString() == "firing");
        Assert.True(firing > 0, "S1's runaway job should be firing after 30 minutes");
        Assert.Equal(firing.ToString(CultureInfo.InvariantCulture), await ValueAsync(page, "firing-count"));
        Assert.Equal(1, await page.Locator("[data-testid=overview-alerts] tr[data-rule=runaway-spend]").CountAsync());

        // The top workload is the one burning most, and its rate is the API's.
        var top = burn.RootElement.GetProperty("workloads").EnumerateArray()
            .OrderByDescending(w => decimal.Parse(w.GetProperty("usd_per_hour").GetString()!, CultureInfo.InvariantCulture))
            .ThenBy(w => w.GetProperty("workload").GetString(), StringComparer.Ordinal).First();
        var firstRow = page.Locator("[data-testid=top-workloads] tbody tr").First;
        Assert.Equal(top.GetProperty("workload").GetString(), await firstRow.GetAttributeAsync("data-workload"));
        Assert.Equal(top.GetProperty("usd_per_hour").GetString(), await firstRow.Locator("[data-testid=workload-rate]").GetAttributeAsync("data-value"));

        // On screen: dollars rounded to cents.
        var shown = await page.Locator("[data-testid=burn-rate]").TextContentAsync();
        Assert.Equal("$" + decimal.Round(decimal.Parse(rate, CultureInfo.InvariantCulture), 2, MidpointRounding.AwayFromZero).ToString("N2", CultureInfo.InvariantCulture) + "/h", shown);
        await ScreenshotAsync(page, "overview");
        Assert.Empty(errors);
    }

    [Fact]
    public async Task A_live_update_arrives_without_reloading()
    {
        var (context, page, errors) = await OpenAsync("#/");
        await using var closing = context;
        await page.WaitForSelectorAsync("[data-testid=spend-today]", Visible);
        var before = await page.GetAttributeAsync("[data-testid=overview]", "data-at");
        var spentBefore = await ValueAsync(page, "spend-today");

        await fixture.PlayAsync(TimeSpan.FromMinutes(15));
        var now = fixture.Clock.GetUtcNow();
        await Assertions.Expect(page.Locator("[data-testid=overview]")).ToHaveAttributeAsync("data-at", Rfc3339(now), new() { Timeout = 15_000 });

        var midnight = new DateTimeOffset(now.Year, now.Month, now.Day, 0, 0, 0, TimeSpan.Zero);
        using var today = await fixture.GetJsonAsync($"/api/v1/costs?from={Rfc3339(midnight)}&to={Rfc3339(now)}");
        var spentAfter = await ValueAsync(page, "spend-today");
        Assert.NotEqual(before, Rfc3339(now));
        Assert.Equal(today.RootElement.GetProperty("total_usd").GetString(), spentAfter);
        Assert.True(Nanos(spentAfter!) > Nanos(spentBefore!), $"today's spend should grow: {spentBefore} -> {spentAfter}");
        await ScreenshotAsync(page, "overview-after-live-update");
        Assert.Empty(errors);
    }

    [Fact]
    public async Task The_drill_down_goes_from_team_to_its_workload()
    {
        using var burn = await fixture.GetJsonAsync("/api/v1/burn");
        var runaway = burn.RootElement.GetProperty("workloads").EnumerateArray().Single(w => w.GetProperty("workload").GetString() == Runaway);
        var team = runaway.GetProperty("team").GetString()!;

        var (context, page, errors) = await OpenAsync("#/chargeback/team");
        await using var closing = context;
        await page.WaitForSelectorAsync("[data-testid=chargeback-table]", Visible);
        var from = (await page.GetAttributeAsync("[data-testid=chargeback]", "data-from"))!;
        var to = (await page.GetAttributeAsync("[data-testid=chargeback]", "data-to"))!;
        using var byTeam = await fixture.GetJsonAsync($"/api/v1/costs?by=team&from={from}&to={to}");
        var teamRow = byTeam.RootElement.GetProperty("rows").EnumerateArray().Single(r => r.GetProperty("keys").GetProperty("team").GetString() == team);
        Assert.Equal(teamRow.GetProperty("cost_usd").GetString(), await page.Locator($"[data-testid=chargeback-table] tr[data-key=\"{team}\"] [data-testid=row-cost]").GetAttributeAsync("data-value"));
        await ScreenshotAsync(page, "chargeback-team");

        await page.Locator($"[data-testid=\"drill-{team}\"]").ClickAsync();
        await page.WaitForSelectorAsync($"[data-testid=drill][data-value=\"{team}\"]", Visible);
        Assert.Equal(teamRow.GetProperty("cost_usd").GetString(), await ValueAsync(page, "drill-total"));
        await ScreenshotAsync(page, "drill-team");

        await page.Locator($"[data-testid=drill-workloads] tr[data-workload=\"{Runaway}\"] [data-testid=workload-link]").ClickAsync();
        await page.WaitForSelectorAsync($"[data-testid=workload][data-workload=\"{Runaway}\"]", Visible);
        Assert.Equal(runaway.GetProperty("usd_per_hour").GetString(), await ValueAsync(page, "workload-rate"));
        Assert.Equal(1, await page.Locator("[data-testid=workload-alerts] tr[data-rule=runaway-spend]").CountAsync());
        await page.WaitForSelectorAsync("[data-testid=workload-chart] canvas", Visible);
        await ScreenshotAsync(page, "workload");
        Assert.Empty(errors);
    }

    [Fact]
    public async Task With_a_key_required_the_page_asks_for_it_once_and_sends_it_on_every_request()
    {
        // The keyed server is the real thing: auth.keys with one read key, the key check answering 401 without it.
        var requests = new List<(string Url, string? Authorization)>();
        var (context, page, errors) = await OpenAsync("#/", fixture.KeyedUrl);
        await using var closing = context;
        page.Request += (_, request) =>
        {
            if (request.Url.Contains("/api/", StringComparison.Ordinal))
                lock (requests)
                    requests.Add((request.Url, request.Headers.TryGetValue("authorization", out var a) ? a : null));
        };
        await page.WaitForSelectorAsync("[data-testid=login][open]", Visible);
        await page.Locator("[data-testid=api-key]").FillAsync("wrong-key");
        await page.Locator("[data-testid=login-submit]").ClickAsync();
        await Assertions.Expect(page.Locator("#login-error")).ToHaveTextAsync("That key was refused.", new() { Timeout = 15_000 });
        // One byte off is as wrong as any other key.
        await page.Locator("[data-testid=api-key]").FillAsync(fixture.ReadKey[..^1] + (fixture.ReadKey[^1] == '0' ? '1' : '0'));
        await page.Locator("[data-testid=login-submit]").ClickAsync();
        await Assertions.Expect(page.Locator("#login-error")).ToHaveTextAsync("That key was refused.", new() { Timeout = 15_000 });
        await page.Locator("[data-testid=api-key]").FillAsync(fixture.ReadKey);
        await page.Locator("[data-testid=login-submit]").ClickAsync();
        await page.WaitForSelectorAsync("[data-testid=login]", new() { State = WaitForSelectorState.Hidden, Timeout = 15_000 });
        await page.WaitForSelectorAsync("[data-testid=burn-rate]", Visible);

        // Every request from now on carries the key, the next refresh included, without asking again.
        int asked;
        lock (requests)
            asked = requests.Count;
        var next = await page.WaitForRequestAsync(r => r.Url.Contains("/api/v1/burn", StringComparison.Ordinal), new() { Timeout = 15_000 });
        Assert.Equal("Bearer " + fixture.ReadKey, next.Headers["authorization"]);
        List<(string Url, string? Authorization)> later;
        lock (requests)
            later = [.. requests.Skip(asked)];
        Assert.NotEmpty(later);
        Assert.All(later, r => Assert.Equal("Bearer " + fixture.ReadKey, r.Authorization));
        Assert.Equal(0, await page.Locator("[data-testid=login][open]").CountAsync());
        using var burn = await fixture.GetJsonAsync("/api/v1/burn", fixture.ReadKey);
        Assert.Equal(burn.RootElement.GetProperty("total_usd_per_hour").GetString(), await ValueAsync(page, "burn-rate"));
        Assert.Equal(fixture.ReadKey, await page.EvaluateAsync<string>("sessionStorage.getItem('burnrate.apiKey')"));
        await ScreenshotAsync(page, "overview-with-key");
        // The 401 answers are logged by Chromium as failed resource loads; nothing else may be.
        Assert.DoesNotContain(errors, e => !e.Contains("401", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_dashboard_is_served_from_memory_with_content_types_and_caching()
    {
        var ct = TestContext.Current.CancellationToken;
        using var index = await fixture.Http.GetAsync(fixture.Url + "/", ct);
        Assert.Equal("text/html", index.Content.Headers.ContentType?.MediaType);
        Assert.Equal("no-cache", index.Headers.CacheControl?.ToString());
        var html = await index.Content.ReadAsStringAsync(ct);
        var script = System.Text.RegularExpressions.Regex.Match(html, "/ui/uPlot\\.iife\\.min\\.js\\?v=([0-9a-f]{16})");
        Assert.True(script.Success, "index.html names uPlot with its content hash");

        using var uplot = await fixture.Http.GetAsync(fixture.Url + script.Value, ct);
        Assert.Equal("text/javascript", uplot.Content.Headers.ContentType?.MediaType);
        Assert.Contains("immutable", uplot.Headers.CacheControl?.ToString(), StringComparison.Ordinal);
        Assert.Contains("uPlot", await uplot.Content.ReadAsStringAsync(ct), StringComparison.Ordinal);

        using var again = new HttpRequestMessage(HttpMethod.Get, fixture.Url + "/ui/app.css");
        again.Headers.TryAddWithoutValidation("If-None-Match", (await fixture.Http.GetAsync(fixture.Url + "/ui/app.css", ct)).Headers.ETag!.ToString());
        using var notModified = await fixture.Http.SendAsync(again, ct);
        Assert.Equal(System.Net.HttpStatusCode.NotModified, notModified.StatusCode);

        using var missing = await fixture.Http.GetAsync(fixture.Url + "/ui/nope.js", ct);
        Assert.Equal(System.Net.HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal("application/problem+json", missing.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task The_bills_page_shows_the_reconciled_periods_and_factors_of_the_api_and_asks_a_read_key_for_an_admin_one()
    {
        // The server's own ledger exported as FOCUS and posted back as a bill: estimate and bill agree, factors are 1.
        var at = fixture.Clock.GetUtcNow();
        var export = await fixture.Http.GetByteArrayAsync($"{fixture.Url}/api/v1/focus?from={Rfc3339(at.AddHours(-1))}&to={Rfc3339(at)}", TestContext.Current.CancellationToken);
        using (var posted = await fixture.Http.PostAsync($"{fixture.Url}/api/v1/billing/focus?name=own-ledger", new ByteArrayContent(export), TestContext.Current.CancellationToken))
            Assert.True(posted.IsSuccessStatusCode, await posted.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        using var calibration = await fixture.GetJsonAsync("/api/v1/billing/calibration");
        var periods = calibration.RootElement.GetProperty("reconciled_periods").EnumerateArray().ToList();
        Assert.NotEmpty(periods);

        var (context, page, errors) = await OpenAsync("#/billing");
        await using var closing = context;
        await page.WaitForSelectorAsync("[data-testid=billing-periods] tbody tr", Visible);
        Assert.Equal(periods.Count, await page.Locator("[data-testid=billing-periods] tbody tr").CountAsync());
        var first = page.Locator("[data-testid=billing-periods] tbody tr").First;
        Assert.Equal(periods[0].GetProperty("estimated_cost").GetString(), await first.Locator("[data-testid=period-estimated]").GetAttributeAsync("data-value"));
        Assert.Equal(periods[0].GetProperty("effective_cost").GetString(), await first.Locator("[data-testid=period-effective]").GetAttributeAsync("data-value"));
        Assert.Equal("+0.00 %", await first.Locator("[data-testid=period-ratio]").TextContentAsync());
        var factors = calibration.RootElement.GetProperty("factors").EnumerateArray().Select(f => f.GetProperty("factor").GetString()!).ToList();
        Assert.Equal(factors, (await page.Locator("[data-testid=factor]").EvaluateAllAsync<string[]>("els => els.map(e => e.dataset.value)")).ToList());
        await ScreenshotAsync(page, "page-billing");
        Assert.Empty(errors);

        // A read key is not enough for bills (they cover every team): the page says so instead of failing.
        var (keyedContext, keyed, keyedErrors) = await OpenAsync("#/billing", fixture.KeyedUrl);
        await using var closingKeyed = keyedContext;
        await keyed.WaitForSelectorAsync("[data-testid=login][open]", Visible);
        await keyed.Locator("[data-testid=api-key]").FillAsync(fixture.ReadKey);
        await keyed.Locator("[data-testid=login-submit]").ClickAsync();
        await keyed.WaitForSelectorAsync("[data-testid=billing-forbidden]", Visible);
        Assert.Equal(0, await keyed.Locator("[data-testid=error]").CountAsync());
        Assert.DoesNotContain(keyedErrors, e => e.StartsWith("page error", StringComparison.Ordinal));
    }

    private async Task<(IBrowserContext Context, IPage Page, List<string> Errors)> OpenAsync(string hash, string? baseUrl = null)
    {
        var chromium = RealPeer.Require("chromium", "chromium");
        var browser = await fixture.BrowserAsync(chromium);
        var context = await browser.NewContextAsync(new() { ViewportSize = new() { Width = 1280, Height = 900 } });
        var page = await context.NewPageAsync();
        var errors = new List<string>();
        page.Console += (_, message) =>
        {
            if (message.Type != "error")
                return;
            lock (errors)
                errors.Add($"console: {message.Text} at {message.Location}");
        };
        page.PageError += (_, error) =>
        {
            lock (errors)
                errors.Add("page error: " + error);
        };
        page.SetDefaultTimeout(15_000);
        await page.GotoAsync((baseUrl ?? fixture.Url) + "/?refresh=1" + hash);
        return (context, page, errors);
    }

    private static async Task<string?> ValueAsync(IPage page, string testId) =>
        await page.Locator($"[data-testid={testId}]").GetAttributeAsync("data-value");

    private static async Task ScreenshotAsync(IPage page, string name)
    {
        Directory.CreateDirectory(DashboardFixture.ScreenshotDirectory);
        var png = await page.ScreenshotAsync(new() { Path = Path.Combine(DashboardFixture.ScreenshotDirectory, name + ".png"), FullPage = true });
        TestContext.Current.AddAttachment(name + ".png", png, "image/png");
    }

    private static string Rfc3339(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static decimal Nanos(string dollars) => decimal.Parse(dollars, CultureInfo.InvariantCulture) * 1_000_000_000m;
}
