using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Burnrate.Billing;
using Burnrate.Server;
using Burnrate.Storage;
using Burnrate.Storage.DuckDb;
using Burnrate.Tests.Billing;
using Burnrate.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Burnrate.Tests.Server;

public sealed class FocusApiTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<WebApplication> StartAsync(ICostStore store, DateTimeOffset now, long? maxBody = null)
    {
        var app = BurnrateServer.Build(new BurnrateServerOptions
        {
            Listen = "127.0.0.1:0",
            Store = store,
            Time = new FakeTimeProvider(now),
            ConfigureServices = s =>
            {
                if (maxBody is { } max)
                    s.AddSingleton(new FocusImportLimit(max));
            },
        });
        await app.StartAsync(Ct);
        return app;
    }

    private static HttpClient Client(WebApplication app) => new() { BaseAddress = new Uri(app.Urls.Single()) };

    private static StreamContent Csv(string path)
    {
        var content = new StreamContent(File.OpenRead(path));
        content.Headers.ContentType = new MediaTypeHeaderValue("text/csv");
        return content;
    }

    [Fact]
    public async Task Posting_the_sample_imports_it_and_answers_providers_quirks_and_the_reconciliation()
    {
        await using var store = await DuckDbCostStore.OpenAsync(":memory:", ct: Ct);
        await using var app = await StartAsync(store, ScenarioBill.T0);
        using var client = Client(app);

        using var first = await client.PostAsync("/api/v1/billing/focus", Csv(FocusTestPaths.Sample), Ct);
        using var again = await client.PostAsync("/api/v1/billing/focus", Csv(FocusTestPaths.Sample), Ct);

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        using var json = JsonDocument.Parse(await first.Content.ReadAsStringAsync(Ct));
        var import = json.RootElement.GetProperty("import");
        Assert.Equal(1000, import.GetProperty("rows_imported").GetInt64());
        Assert.Contains(import.GetProperty("quirks").EnumerateArray(), q => q.GetProperty("kind").GetString() == "shifted-value" && q.GetProperty("count").GetInt64() == 51);
        Assert.Equal(3, json.RootElement.GetProperty("reconciliation").GetProperty("unmatched_bill").GetArrayLength());
        // The same body twice is one source: still 1,000 lines stored.
        Assert.Equal(1000, (await store.QueryBillingAsync(DateTimeOffset.UnixEpoch, ScenarioBill.T0, Ct)).Count);
    }

    [Fact]
    public async Task A_bill_missing_a_mandatory_column_is_400_naming_it_and_a_body_over_the_limit_is_413()
    {
        await using var store = await DuckDbCostStore.OpenAsync(":memory:", ct: Ct);
        await using var app = await StartAsync(store, ScenarioBill.T0, maxBody: 4096);
        using var client = Client(app);
        var lines = await File.ReadAllLinesAsync(FocusTestPaths.Sample, Ct);
        var header = lines[0].Replace("\"EffectiveCost\"", "\"Effective\"", StringComparison.Ordinal);

        using var missing = await client.PostAsync("/api/v1/billing/focus", new StringContent(header + "\n" + lines[1] + "\n"), Ct);
        using var tooLarge = await client.PostAsync("/api/v1/billing/focus", Csv(FocusTestPaths.Sample), Ct);

        Assert.Equal(HttpStatusCode.BadRequest, missing.StatusCode);
        Assert.Equal("application/problem+json", missing.Content.Headers.ContentType?.MediaType);
        Assert.Contains("'EffectiveCost'", await missing.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, tooLarge.StatusCode);
        Assert.Equal("application/problem+json", tooLarge.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task The_focus_export_in_parquet_and_csv_reimports_to_the_ledgers_total()
    {
        await using var ledger = await ScenarioBill.PlayAsync("s1", TimeSpan.FromHours(2));
        var from = ScenarioBill.T0;
        var to = ScenarioBill.T0 + TimeSpan.FromHours(2);
        var total = (await ledger.QueryCostsAsync(new CostQuery { From = from, To = to }, Ct)).Sum(r => r.Cost.Nanos);
        Assert.True(total > 0);
        await using var app = await StartAsync(ledger, to);
        using var client = Client(app);
        var directory = Directory.CreateTempSubdirectory("burnrate-focus-api-").FullName;
        try
        {
            foreach (var (format, granularity) in new[] { ("parquet", "hour"), ("csv", "minute") })
            {
                using var response = await client.GetAsync($"/api/v1/focus?from={TimeQuery(from)}&to={TimeQuery(to)}&format={format}&granularity={granularity}", Ct);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                var path = Path.Combine(directory, "export." + format);
                await File.WriteAllBytesAsync(path, await response.Content.ReadAsByteArrayAsync(Ct), Ct);

                await using var store = await DuckDbCostStore.OpenAsync(":memory:", ct: Ct);
                var result = await FocusImporter.ImportAsync(store, path, format, cancellationToken: Ct);
                Assert.Equal(FocusVersion.V1_2, result.Version);
                Assert.Equal(total, Money.FromDollars(result.Providers.Sum(p => p.BilledCost)).Nanos);
            }
            using var bad = await client.GetAsync("/api/v1/focus?granularity=second", Ct);
            Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
            Assert.Contains("granularity", await bad.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static string TimeQuery(DateTimeOffset t) => Uri.EscapeDataString(t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture));
}
