using System.Globalization;
using Microsoft.Playwright;

namespace Burnrate.Benchmarks.Api;

/// <summary>The dashboard's first load in headless Chromium: navigation until the overview's numbers are shown.</summary>
internal static class Browser
{
    public static async Task MeasureAsync(string chromium, Uri server, int runs)
    {
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = chromium,
            Headless = true,
            Timeout = 60_000,
            Args =
            [
                "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--no-default-browser-check",
            ],
        });
        // Shown: the overview's cards filled from the API (today's and the month's spend, the burn rate) and its chart drawn.
        const string Shown = """
            () => {
              const t = id => (document.querySelector(`[data-testid="${id}"]`)?.textContent || "").trim();
              return t("spend-month").length > 0 && t("spend-today").length > 0 && t("burn-rate").length > 0
                && document.querySelector('[data-testid="overview-chart"] canvas') !== null;
            }
            """;
        var inPage = new List<double>();
        var outside = new List<double>();
        string? month = null;
        for (var run = -1; run < runs; run++)
        {
            // A new context each run: no cache, no storage, so every load fetches the page, script and data.
            await using var context = await browser.NewContextAsync();
            var page = await context.NewPageAsync();
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            await page.GotoAsync(server.ToString(), new PageGotoOptions { WaitUntil = WaitUntilState.Commit, Timeout = 60_000 });
            await page.WaitForFunctionAsync(Shown, null, new PageWaitForFunctionOptions { Timeout = 60_000, PollingInterval = 5 });
            var outsideMs = System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            // performance.now() counts from the navigation's start (the page's time origin).
            var inPageMs = await page.EvaluateAsync<double>("() => performance.now()");
            month = await page.Locator("[data-testid=spend-month]").TextContentAsync();
            if (run < 0)
                continue; // the first load warms the server's static files and the browser process
            inPage.Add(inPageMs);
            outside.Add(outsideMs);
        }
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Dashboard first load ({runs} runs after one warm-up, each in a new browser context; shown = spend today, spend this month, burn rate filled and the chart drawn; month shown as {month?.Trim()}):"));
        Console.WriteLine("| measured from | median ms | p90 ms | max ms |");
        Console.WriteLine("|---|---:|---:|---:|");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| navigation start, in the page (performance.now() when shown) | {ApiBenchmark.Percentile(inPage, 0.5):F0} | {ApiBenchmark.Percentile(inPage, 0.9):F0} | {inPage.Max():F0} |"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| the driver's goto call, until shown (includes Playwright round trips, polling every 5 ms) | {ApiBenchmark.Percentile(outside, 0.5):F0} | {ApiBenchmark.Percentile(outside, 0.9):F0} | {outside.Max():F0} |"));
    }
}
