using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Burnrate.Tests.Support;

namespace Burnrate.Tests.Ingest;

/// <summary>
/// Crash safety with a real process: <c>burnrate serve</c> is killed with SIGKILL while a client streams, restarted on
/// the same data directory, and the ledger then holds every acknowledged input exactly once. The input is transfers
/// (bytes priced per GB), so a lost input lowers the total and a doubled one raises it: the total tells.
/// </summary>
public sealed partial class CrashRecoveryTests : IDisposable
{
    private const decimal AwsInternetEgressPerGb = 0.09m; // ratecard.yaml, aws internet
    private readonly string _dir = Directory.CreateTempSubdirectory("burnrate-crash-").FullName;
    private readonly StringBuilder _log = new();
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(5) };
    private Process? _server;

    [Fact]
    public async Task Every_acknowledged_input_is_in_the_ledger_exactly_once_after_a_kill_9_and_restart()
    {
        var ct = TestContext.Current.CancellationToken;
        var data = Path.Combine(_dir, "data");
        var config = Path.Combine(_dir, "burnrate.yaml");
        await File.WriteAllTextAsync(config, "rating:\n  grace: 1s\n", ct);
        // Backfilled input: every event is half an hour old, so its minute is closed as soon as it arrives.
        var t0 = DateTimeOffset.UtcNow.AddMinutes(-30);
        t0 = new DateTimeOffset(t0.Ticks - t0.Ticks % TimeSpan.TicksPerMinute, TimeSpan.Zero);

        var url = await StartServerAsync(data, config, ct);
        await PostAsync(url, $$$"""
            [{"type": "node_started", "time": "{{{Time(t0)}}}", "node": {"id": "i-crash", "provider": "aws", "region": "us-east-1",
              "zone": "us-east-1a", "instance_type": "p4d.24xlarge", "capacity": "on-demand", "gpus": 8, "gpu_model": "A100"}},
             {"type": "workload_started", "time": "{{{Time(t0)}}}", "workload": {"id": "job:crash", "name": "crash", "team": "sre"}}]
            """, ct);

        long acknowledged = 0; // bytes of transfers answered 2xx
        long unanswered = 0;   // bytes of requests that got no answer (the kill): may or may not be in the ledger
        var sent = 0;

        async Task StreamAsync(string target, int count, CancellationToken token)
        {
            for (var i = 0; i < count && !token.IsCancellationRequested; i++, sent++)
            {
                var bytes = 1_000_000_000L + 100L * sent; // distinct, and a whole number of nano-dollars at $0.09/GB
                var body = $$"""[{"type": "bytes_transferred", "time": "{{Time(t0.AddSeconds(sent % 1500))}}", "workload_id": "job:crash", "node_id": "i-crash", "kind": "internet", "bytes": {{bytes}}}]""";
                try
                {
                    using var response = await _http.PostAsync(target + "/api/v1/events", new StringContent(body, Encoding.UTF8, "application/json"), token);
                    if (response.StatusCode == HttpStatusCode.Accepted)
                        acknowledged += bytes;
                    else
                        Assert.Fail($"request {sent}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(token)}");
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !token.IsCancellationRequested)
                {
                    unanswered += bytes; // the server died under this request
                    sent++;
                    return;
                }
            }
        }

        // Stream, and kill the server with SIGKILL mid-stream once a good number of inputs were acknowledged.
        using (var streaming = CancellationTokenSource.CreateLinkedTokenSource(ct))
        {
            var stream = StreamAsync(url, 100_000, streaming.Token);
            // After a checkpoint (rated minutes in the ledger), so the restart must both skip what the ledger holds and
            // rewrite what it may hold in part.
            var checkpoint = Path.Combine(data, "wal", "checkpoint");
            while ((acknowledged < 150 * 1_000_000_000L || !File.Exists(checkpoint)) && !stream.IsCompleted)
                await Task.Delay(10, ct);
            _server!.Kill(); // SIGKILL: no shutdown code runs
            await _server.WaitForExitAsync(ct);
            await stream;
        }
        Assert.True(acknowledged > 0);

        // Restart on the same directory: the log is replayed, then more input streams in.
        url = await StartServerAsync(data, config, ct);
        Assert.Matches(@"replayed \d+ inputs", Log());
        Assert.DoesNotMatch(@"checkpoint \(null\)[^\n]*\n[^\n]*$", Log()); // the second replay started from a checkpoint
        await StreamAsync(url, 50, ct);
        Assert.Equal(0, unanswered % 100); // sanity: amounts stay whole nano-dollars

        // The ledger's network cost, once every minute is rated, is the acknowledged bytes priced once each, plus at most
        // the one request the kill left unanswered (logged before it could be answered).
        var expected = acknowledged * AwsInternetEgressPerGb / 1_000_000_000m;
        var expectedIfLogged = (acknowledged + unanswered) * AwsInternetEgressPerGb / 1_000_000_000m;
        decimal network = 0;
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(150);
        while (DateTime.UtcNow < until)
        {
            network = await NetworkCostAsync(url, t0, ct);
            if (network == expected || network == expectedIfLogged)
                break;
            Assert.True(network < expectedIfLogged, $"counted twice: ledger {network}, acknowledged {expected} (+{unanswered} bytes unanswered){Log()}\n{await _http.GetStringAsync($"{url}/api/v1/costs?by=component&step=1m&from={Time(t0.AddHours(-1))}&to={Time(DateTimeOffset.UtcNow.AddHours(1))}", ct)}");
            await Task.Delay(1000, ct);
        }
        Assert.True(network == expected || network == expectedIfLogged,
            $"ledger network cost {network}, expected {expected} (or {expectedIfLogged} with the unanswered request){Log()}");

        // A plain `kill` (SIGTERM, as systemd and Kubernetes stop a process) stops serve cleanly with exit code 0.
        using (var kill = Process.Start("kill", ["-TERM", _server!.Id.ToString(CultureInfo.InvariantCulture)]))
            await kill.WaitForExitAsync(ct);
        using var exited = CancellationTokenSource.CreateLinkedTokenSource(ct);
        exited.CancelAfter(TimeSpan.FromSeconds(60));
        await _server.WaitForExitAsync(exited.Token);
        Assert.True(_server.ExitCode == 0, "serve did not exit 0 on SIGTERM: " + _server.ExitCode + Log());
    }

    private async Task<decimal> NetworkCostAsync(string url, DateTimeOffset t0, CancellationToken ct)
    {
        var query = $"{url}/api/v1/costs?by=component&from={Time(t0.AddHours(-1))}&to={Time(DateTimeOffset.UtcNow.AddHours(1))}";
        using var report = JsonDocument.Parse(await _http.GetStringAsync(query, ct));
        foreach (var row in report.RootElement.GetProperty("rows").EnumerateArray())
        {
            if (row.GetProperty("keys").GetProperty("component").GetString() == "network")
                return decimal.Parse(row.GetProperty("cost_usd").GetString()!, CultureInfo.InvariantCulture);
        }
        return 0;
    }

    private async Task PostAsync(string url, string json, CancellationToken ct)
    {
        using var response = await _http.PostAsync(url + "/api/v1/events", new StringContent(json, Encoding.UTF8, "application/json"), ct);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, await response.Content.ReadAsStringAsync(ct));
    }

    /// <summary>Starts <c>burnrate serve</c> as its own process (the build next to this test assembly).</summary>
    private async Task<string> StartServerAsync(string data, string config, CancellationToken ct)
    {
        int before;
        lock (_log)
            before = _log.Length;
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
        _server = RealPeer.Start(dotnet, [Path.Combine(AppContext.BaseDirectory, "burnrate.dll"), "serve", "--listen", "127.0.0.1:0", "--data", data, "--config", config], _log);
        for (var i = 0; i < 1200; i++)
        {
            string text;
            lock (_log)
                text = _log.ToString(before, _log.Length - before);
            if (UrlPattern().Match(text) is { Success: true } m)
                return m.Value;
            Assert.False(_server.HasExited, "serve exited: " + text);
            await Task.Delay(50, ct);
        }
        throw new InvalidOperationException("serve never said where it listens: " + Log());
    }

    private string Log()
    {
        lock (_log)
            return "\n--- serve output\n" + _log;
    }

    private static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    [GeneratedRegex(@"http://127\.0\.0\.1:\d+")]
    private static partial Regex UrlPattern();

    public void Dispose()
    {
        RealPeer.Stop(_server);
        _http.Dispose();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
