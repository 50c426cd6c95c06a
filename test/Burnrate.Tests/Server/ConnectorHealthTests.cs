using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Burnrate.Cli;
using Microsoft.Extensions.Time.Testing;

namespace Burnrate.Tests.Server;

/// <summary>
/// A connector that cannot reach its orchestrator (here: no Slurm commands where the config says they are) is reported
/// as failing in <c>GET /api/v1/connectors</c> and <c>/metrics</c>, and the rest of <c>burnrate serve</c> runs on.
/// </summary>
public sealed partial class ConnectorHealthTests : IDisposable
{
    private readonly string _data = Directory.CreateTempSubdirectory("burnrate-connector-health-").FullName;
    private readonly StringWriter _out = new();
    private readonly StringWriter _error = new();
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2025, 6, 15, 12, 0, 0, TimeSpan.Zero));
    private readonly HttpClient _http = new();

    [Fact]
    public async Task A_failing_connector_says_so_in_the_api_and_metrics_while_serve_keeps_taking_events()
    {
        var ct = TestContext.Current.CancellationToken;
        var config = Path.Combine(_data, "burnrate.yaml");
        var missing = Path.Combine(_data, "no-slurm-here");
        await File.WriteAllTextAsync(config, $"connectors:\n  slurm:\n    bin_dir: {missing}\n    interval: 10s\n", ct);
        var real = Composition.CreateServices();
        var services = new CliServices
        {
            OpenStore = real.OpenStore,
            LoadPriceBook = real.LoadPriceBook,
            Out = TextWriter.Synchronized(_out),
            Error = TextWriter.Synchronized(_error),
            Time = _time,
        };
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var run = BurnrateCli.InvokeAsync(services, ["serve", "--listen", "127.0.0.1:0", "--data", _data, "--config", config], stop.Token);
        string? url = null;
        for (var i = 0; i < 600 && url is null && !run.IsCompleted; i++)
        {
            url = UrlPattern().Match(_out.ToString()) is { Success: true } m ? m.Value : null;
            await Task.Delay(50, ct);
        }
        Assert.True(url is not null, "serve never said where it listens: " + _out + _error);
        Assert.Contains("1 connectors", _out.ToString(), StringComparison.Ordinal);

        JsonElement connector = default;
        for (var i = 0; i < 200; i++)
        {
            var body = JsonDocument.Parse(await _http.GetStringAsync(url + "/api/v1/connectors", ct)).RootElement;
            connector = body.GetProperty("connectors").EnumerateArray().Single();
            if (connector.GetProperty("status").GetString() != "starting")
                break;
            await Task.Delay(25, ct);
        }
        Assert.Equal("slurm", connector.GetProperty("name").GetString());
        Assert.Equal("failing", connector.GetProperty("status").GetString());
        Assert.Contains(Path.Combine(missing, "scontrol") + ": cannot start", connector.GetProperty("last_error").GetString(), StringComparison.Ordinal);
        Assert.Equal(JsonValueKind.Null, connector.GetProperty("last_success").ValueKind);
        Assert.Equal(JsonValueKind.Null, connector.GetProperty("lag_seconds").ValueKind);
        var metrics = await _http.GetStringAsync(url + "/metrics", ct);
        Assert.Contains("burnrate_connector_up{connector=\"slurm\",kind=\"slurm\"} 0\n", metrics, StringComparison.Ordinal);
        Assert.Contains("burnrate_connector_poll_failures_total{connector=\"slurm\",kind=\"slurm\"} 1\n", metrics, StringComparison.Ordinal);
        Assert.Contains("warning: slurm connector: poll failed", _error.ToString(), StringComparison.Ordinal);

        // The rest of the server is not affected: events are taken, health is fine.
        using var events = await _http.PostAsync(url + "/api/v1/events", new StringContent(
            """{"type": "workload_stopped", "time": "2025-06-15T12:00:00Z", "workload_id": "w"}""", Encoding.UTF8, "application/json"), ct);
        Assert.Equal(HttpStatusCode.Accepted, events.StatusCode);
        Assert.Equal("ok\n", await _http.GetStringAsync(url + "/healthz", ct));

        // It keeps trying on its interval.
        _time.Advance(TimeSpan.FromSeconds(10));
        for (var i = 0; i < 200 && !(await _http.GetStringAsync(url + "/metrics", ct)).Contains("burnrate_connector_polls_total{connector=\"slurm\",kind=\"slurm\"} 2\n", StringComparison.Ordinal); i++)
            await Task.Delay(25, ct);
        Assert.Contains("burnrate_connector_polls_total{connector=\"slurm\",kind=\"slurm\"} 2\n", await _http.GetStringAsync(url + "/metrics", ct), StringComparison.Ordinal);

        await stop.CancelAsync();
        Assert.Equal(0, await run);
    }

    [GeneratedRegex(@"http://127\.0\.0\.1:\d+")]
    private static partial Regex UrlPattern();

    public void Dispose()
    {
        _http.Dispose();
        Directory.Delete(_data, recursive: true);
    }
}
