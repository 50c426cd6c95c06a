using System.Text;
using System.Text.Json;
using Burnrate.Alerting;
using Burnrate.Alerting.Delivery;
using Burnrate.Tests.Support;

namespace Burnrate.Tests.Alerting;

/// <summary>
/// The real thing: Debian's Alertmanager (0.25 on bookworm) on a loopback port, routing everything to a webhook
/// receiver inside the test. Burnrate's firing and then resolved alert arrive there, with their labels.
/// </summary>
public sealed class AlertmanagerDeliveryTests : IAsyncDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("burnrate-am-").FullName;
    private readonly StringBuilder _log = new();
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };
    private System.Diagnostics.Process? _alertmanager;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Alertmanager_forwards_burnrates_firing_and_resolved_alerts_to_its_webhook()
    {
        var binary = RealPeer.Require("prometheus-alertmanager", "prometheus-alertmanager");
        await using var hook = await HookReceiver.StartAsync(Ct);
        var port = RealPeer.FreePort();
        var config = Path.Combine(_dir, "alertmanager.yml");
        await File.WriteAllTextAsync(config, $"""
            route:
              receiver: capture
              group_by: [alertname]
              group_wait: 0s
              group_interval: 1s
              repeat_interval: 1h
            receivers:
              - name: capture
                webhook_configs:
                  - url: {hook.Url}/hook
                    send_resolved: true
            """, Ct);
        _alertmanager = RealPeer.Start(binary,
            [$"--config.file={config}", $"--storage.path={Path.Combine(_dir, "data")}", $"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=warn"],
            _log);
        var alertmanager = $"http://127.0.0.1:{port}";
        await WaitUntilAsync(async () =>
        {
            try
            {
                return (await _http.GetAsync(alertmanager + "/-/ready", Ct)).IsSuccessStatusCode;
            }
            catch (HttpRequestException)
            {
                return false;
            }
        }, "Alertmanager never became ready");

        await using var dispatcher = new AlertDispatcher(
            new DeliveryOptions { Targets = [new NotifyTarget("am", NotifyKind.Alertmanager, new Uri(alertmanager))], ExternalUrl = new Uri("http://burnrate.test:9840") },
            _http);
        var now = DateTimeOffset.UtcNow;
        var firing = new AlertNotification(
            "GpuIdleButBilled", "fp-am-1", AlertState.Firing,
            new Dictionary<string, string> { ["alertname"] = "GpuIdleButBilled", ["severity"] = "warning", ["workload"] = "k8s:ml-team/trainer-0", ["team"] = "vision" },
            new Dictionary<string, string> { ["summary"] = "GPU idle for 30m", ["usd_per_hour"] = "4.10" },
            now.AddSeconds(-30), null, now);

        dispatcher.Publish([firing]);
        var firingAlert = await WaitForAsync(hook, "firing");
        Assert.Equal("k8s:ml-team/trainer-0", firingAlert.GetProperty("labels").GetProperty("workload").GetString());
        Assert.Equal("vision", firingAlert.GetProperty("labels").GetProperty("team").GetString());
        Assert.Equal("4.10", firingAlert.GetProperty("annotations").GetProperty("usd_per_hour").GetString());
        Assert.Equal("http://burnrate.test:9840/alerts", firingAlert.GetProperty("generatorURL").GetString());

        var ended = DateTimeOffset.UtcNow;
        dispatcher.Publish([firing with { State = AlertState.Resolved, EndsAt = ended, EvidenceAt = ended }]);
        var resolvedAlert = await WaitForAsync(hook, "resolved");
        Assert.Equal("GpuIdleButBilled", resolvedAlert.GetProperty("labels").GetProperty("alertname").GetString());
        Assert.Equal("k8s:ml-team/trainer-0", resolvedAlert.GetProperty("labels").GetProperty("workload").GetString());
        Assert.Equal(2, dispatcher.Status[0].Sent);
        Assert.Equal(0, dispatcher.Status[0].Failed);
    }

    private async Task<JsonElement> WaitForAsync(HookReceiver hook, string status)
    {
        JsonElement? found = null;
        await WaitUntilAsync(() =>
        {
            found = hook.Requests.Select(r => r.Body)
                .Where(b => b.GetProperty("status").GetString() == status)
                .SelectMany(b => b.GetProperty("alerts").EnumerateArray())
                .Cast<JsonElement?>()
                .FirstOrDefault(a => a!.Value.GetProperty("status").GetString() == status);
            return Task.FromResult(found is not null);
        }, $"the webhook never got a {status} notification; got {string.Join("\n", hook.Requests.Select(r => r.Body.ToString()))}");
        return found!.Value;
    }

    private async Task WaitUntilAsync(Func<Task<bool>> condition, string why)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        limit.CancelAfter(TimeSpan.FromSeconds(60));
        while (!await condition())
        {
            if (limit.IsCancellationRequested)
                Assert.Fail(why + "\nAlertmanager log:\n" + _log);
            await Task.Delay(100, Ct);
        }
    }

    public async ValueTask DisposeAsync()
    {
        RealPeer.Stop(_alertmanager);
        _http.Dispose();
        await Task.Yield();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
