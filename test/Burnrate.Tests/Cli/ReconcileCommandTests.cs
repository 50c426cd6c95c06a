using System.Text.Json;
using Burnrate.Cli;
using Burnrate.Tests.Support;

namespace Burnrate.Tests.Cli;

/// <summary><c>burnrate reconcile</c> in-process against a real DuckDB ledger in a temporary data directory.</summary>
public sealed class ReconcileCommandTests : IDisposable
{
    private readonly string _data = Directory.CreateTempSubdirectory("burnrate-reconcile-").FullName;
    private readonly StringWriter _out = new();
    private readonly StringWriter _error = new();

    public void Dispose()
    {
        if (Directory.Exists(_data))
            Directory.Delete(_data, recursive: true);
    }

    private CliServices Services() => Composition.CreateServices() is var real
        ? new CliServices { OpenStore = real.OpenStore, LoadPriceBook = real.LoadPriceBook, Out = _out, Error = _error }
        : throw new InvalidOperationException();

    [Fact]
    public async Task Reconcile_imports_the_sample_and_reports_providers_quirks_and_the_unmatched_bill_as_json()
    {
        var exit = await BurnrateCli.InvokeAsync(Services(), ["reconcile", FocusTestPaths.Sample, "--format", "json", "--data", _data], TestContext.Current.CancellationToken);

        Assert.True(exit == 0, _error.ToString());
        using var json = JsonDocument.Parse(_out.ToString());
        var import = json.RootElement.GetProperty("imports")[0];
        Assert.Equal("1.0", import.GetProperty("focus_version").GetString());
        Assert.Equal(1000, import.GetProperty("rows_imported").GetInt64());
        var providers = import.GetProperty("providers").EnumerateArray().ToDictionary(p => p.GetProperty("provider").GetString()!, p => p.GetProperty("rows").GetInt64());
        Assert.Equal(new Dictionary<string, long> { ["AWS"] = 942, ["Microsoft"] = 51, ["Oracle"] = 7 }, providers);
        var casing = import.GetProperty("quirks").EnumerateArray().Single(q => q.GetProperty("kind").GetString() == "case");
        Assert.Equal(926, casing.GetProperty("first_rows")[0].GetInt64());

        // An empty ledger: every bill line is unmatched, per provider, with the bill's own totals.
        var reconciliation = json.RootElement.GetProperty("reconciliation");
        var unmatched = reconciliation.GetProperty("unmatched_bill").EnumerateArray().ToDictionary(u => u.GetProperty("provider").GetString()!, u => u.GetProperty("count").GetInt64());
        Assert.Equal(new Dictionary<string, long> { ["aws"] = 942, ["azure"] = 51, ["oci"] = 7 }, unmatched);
        Assert.Equal("2024-09-01T00:00:00Z", reconciliation.GetProperty("from").GetString());
    }

    [Fact]
    public async Task Configured_credits_are_listed_beside_the_bills_credit_lines()
    {
        // The sample bills September 2024 and has one AWS Credit line (-2.6137). The config's AWS credit runs 30 days
        // from September 16: half of it falls in the bill's month.
        var config = Path.Combine(_data, "burnrate.yaml");
        await File.WriteAllTextAsync(config, """
            commitments:
              credits:
                - { provider: aws, amount: 300, from: 2024-09-16T00:00:00Z, to: 2024-10-16T00:00:00Z, description: migration }
                - { provider: gcp, amount: 90, from: 2024-08-01T00:00:00Z, to: 2024-09-01T00:00:00Z, description: trial }
            """, TestContext.Current.CancellationToken);

        var exit = await BurnrateCli.InvokeAsync(Services(), ["reconcile", FocusTestPaths.Sample, "--format", "json", "--data", _data, "--config", config], TestContext.Current.CancellationToken);

        Assert.True(exit == 0, _error.ToString());
        using var json = JsonDocument.Parse(_out.ToString());
        var credit = Assert.Single(json.RootElement.GetProperty("reconciliation").GetProperty("credits").EnumerateArray());
        Assert.Equal("aws", credit.GetProperty("provider").GetString());
        Assert.Equal(150m, decimal.Parse(credit.GetProperty("configured").GetString()!, System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(-2.6137m, decimal.Parse(credit.GetProperty("billed").GetString()!, System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(1, credit.GetProperty("bill_lines").GetInt64());
        Assert.Equal(147.3863m, decimal.Parse(credit.GetProperty("missing").GetString()!, System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(["migration"], credit.GetProperty("descriptions").EnumerateArray().Select(d => d.GetString()));

        // The table says the same.
        _out.GetStringBuilder().Clear();
        exit = await BurnrateCli.InvokeAsync(Services(), ["reconcile", FocusTestPaths.Sample, "--data", _data, "--config", config, "--no-calibrate"], TestContext.Current.CancellationToken);
        Assert.True(exit == 0, _error.ToString());
        var text = _out.ToString();
        Assert.Contains("credits configured", text);
        Assert.Contains("$150.00", text);
        Assert.Contains("migration", text);
    }

    [Fact]
    public async Task A_file_without_a_mandatory_column_is_a_usage_error_naming_the_column()
    {
        var file = Path.Combine(_data, "bad.csv");
        var lines = await File.ReadAllLinesAsync(FocusTestPaths.Sample, TestContext.Current.CancellationToken);
        await File.WriteAllLinesAsync(file, [lines[0].Replace("\"ServiceName\"", "\"Service\"", StringComparison.Ordinal), lines[1]], TestContext.Current.CancellationToken);

        var exit = await BurnrateCli.InvokeAsync(Services(), ["reconcile", file, "--data", _data], TestContext.Current.CancellationToken);

        Assert.Equal(2, exit);
        Assert.Contains("'ServiceName'", _error.ToString(), StringComparison.Ordinal);
    }
}
