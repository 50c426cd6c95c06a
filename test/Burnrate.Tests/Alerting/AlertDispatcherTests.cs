using System.Text.Json;
using Burnrate.Alerting;
using Burnrate.Alerting.Delivery;
using Burnrate.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace Burnrate.Tests.Alerting;

public sealed class AlertDispatcherTests : IDisposable
{
    private static readonly DateTimeOffset s_start = new(2026, 11, 22, 14, 45, 0, TimeSpan.Zero);
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private readonly HttpClient _http = new();

    internal static AlertNotification Firing(string fingerprint = "fp-1", Dictionary<string, string>? labels = null, IReadOnlyDictionary<string, object>? action = null) => new(
        "idle-gpu", fingerprint, AlertState.Firing,
        labels ?? new() { ["alertname"] = "idle-gpu", ["severity"] = "warning", ["workload"] = "k8s:ml/train-0", ["team"] = "vision" },
        new Dictionary<string, string> { ["summary"] = "GPU idle for 30m", ["usd_per_hour"] = "32.77" },
        s_start, null, s_start, action);

    internal static AlertNotification Resolved(AlertNotification firing, DateTimeOffset at) =>
        firing with { State = AlertState.Resolved, EndsAt = at, EvidenceAt = at };

    private AlertDispatcher Dispatcher(HookReceiver receiver, NotifyKind kind, TimeProvider time, string path = "/hook", int attempts = 5) =>
        new(new DeliveryOptions { Targets = [new NotifyTarget("t", kind, new Uri(receiver.Url + path))], Attempts = attempts }, _http, time);

    private static async Task WaitUntilAsync(Func<bool> condition, Func<string> why, FakeTimeProvider? time = null)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        limit.CancelAfter(TimeSpan.FromSeconds(30));
        while (!condition())
        {
            if (limit.IsCancellationRequested)
                Assert.Fail(why());
            time?.Advance(TimeSpan.FromSeconds(1));
            await Task.Delay(20, Ct);
        }
    }

    public void Dispose() => _http.Dispose();

    [Fact]
    public async Task Alertmanager_gets_a_v2_postable_alert_firing_then_resolved_with_endsAt()
    {
        await using var receiver = await HookReceiver.StartAsync(Ct);
        await using var dispatcher = Dispatcher(receiver, NotifyKind.Alertmanager, new FakeTimeProvider(s_start), path: "/");
        var firing = Firing();

        dispatcher.Publish([firing]);
        await WaitUntilAsync(() => !receiver.Requests.IsEmpty, () => "no post");
        dispatcher.Publish([Resolved(firing, s_start.AddMinutes(7))]);
        await WaitUntilAsync(() => receiver.Requests.Count >= 2, () => "no resolved post");

        var posts = receiver.Requests.ToArray();
        Assert.All(posts, p => Assert.Equal("/api/v2/alerts", p.Path));
        var first = Assert.Single(posts[0].Body.EnumerateArray().ToArray());
        Assert.Equal("idle-gpu", first.GetProperty("labels").GetProperty("alertname").GetString());
        Assert.Equal("k8s:ml/train-0", first.GetProperty("labels").GetProperty("workload").GetString());
        Assert.Equal("32.77", first.GetProperty("annotations").GetProperty("usd_per_hour").GetString());
        Assert.Equal(s_start, first.GetProperty("startsAt").GetDateTimeOffset());
        Assert.False(first.TryGetProperty("endsAt", out _), "a firing alert carries no endsAt: " + first);
        var second = Assert.Single(posts[1].Body.EnumerateArray().ToArray());
        Assert.Equal(s_start.AddMinutes(7), second.GetProperty("endsAt").GetDateTimeOffset());
        Assert.Equal(2, dispatcher.Status[0].Sent);
    }

    [Fact]
    public async Task A_5xx_is_retried_with_backoff_and_the_alert_is_delivered_once()
    {
        await using var receiver = await HookReceiver.StartAsync(Ct, 503, 502);
        var time = new FakeTimeProvider(s_start);
        await using var dispatcher = Dispatcher(receiver, NotifyKind.Webhook, time);

        dispatcher.Publish([Firing()]);
        await WaitUntilAsync(() => dispatcher.Status[0].Sent == 1, () => "never delivered: " + dispatcher.Status[0], time);
        // The engine publishing the same alert again (a restart, a repeat) does not deliver it twice.
        dispatcher.Publish([Firing()]);
        await WaitUntilAsync(() => dispatcher.Status[0].Deduplicated == 1, () => "not deduplicated: " + dispatcher.Status[0], time);

        Assert.Equal(3, receiver.Requests.Count);
        var status = dispatcher.Status[0];
        Assert.Equal((1L, 0L, 2L), (status.Sent, status.Failed, status.Retries));
        Assert.Equal("HTTP 502", status.LastError);
    }

    [Fact]
    public async Task A_4xx_is_not_retried_and_counts_as_failed()
    {
        await using var receiver = await HookReceiver.StartAsync(Ct, 400);
        var time = new FakeTimeProvider(s_start);
        await using var dispatcher = Dispatcher(receiver, NotifyKind.Webhook, time);

        dispatcher.Publish([Firing()]);
        await WaitUntilAsync(() => dispatcher.Status[0].Failed == 1, () => "never failed: " + dispatcher.Status[0], time);
        time.Advance(TimeSpan.FromMinutes(10));

        Assert.Single(receiver.Requests);
        Assert.Equal(0, dispatcher.Status[0].Retries);
        Assert.Equal("HTTP 400", dispatcher.Status[0].LastError);
        var metrics = Burnrate.Server.SelfMetricsEndpoints.RenderDelivery(dispatcher);
        Assert.Contains("burnrate_alert_notifications_failed_total{target=\"t\",kind=\"webhook\"} 1\n", metrics, StringComparison.Ordinal);
        Assert.Contains("burnrate_alert_notifications_sent_total{target=\"t\",kind=\"webhook\"} 0\n", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unreachable_slack_target_fails_after_its_attempts_without_showing_its_token()
    {
        var port = RealPeer.FreePort();
        var time = new FakeTimeProvider(s_start);
        await using var dispatcher = new AlertDispatcher(
            new DeliveryOptions { Targets = [new NotifyTarget("finops", NotifyKind.Slack, new Uri($"http://127.0.0.1:{port}/services/T0/B0/supersecret"))], Attempts = 3 },
            _http, time);

        dispatcher.Publish([Firing()]);
        await WaitUntilAsync(() => dispatcher.Status[0].Failed == 1, () => "never failed: " + dispatcher.Status[0], time);

        var status = dispatcher.Status[0];
        Assert.Equal(2, status.Retries);
        Assert.StartsWith("network error", status.LastError, StringComparison.Ordinal);
        Assert.DoesNotContain("supersecret", status.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_generic_webhook_and_slack_bodies_are_as_documented()
    {
        await using var receiver = await HookReceiver.StartAsync(Ct);
        await using var dispatcher = new AlertDispatcher(
            new DeliveryOptions
            {
                Targets = [new NotifyTarget("hook", NotifyKind.Webhook, new Uri(receiver.Url + "/hook")), new NotifyTarget("slack", NotifyKind.Slack, new Uri(receiver.Url + "/slack"))],
                ExternalUrl = new Uri("http://burnrate.internal:9840"),
            },
            _http, new FakeTimeProvider(s_start));

        dispatcher.Publish([Firing()]);
        await WaitUntilAsync(() => receiver.Requests.Count >= 2, () => "missing posts");

        var hook = receiver.Requests.Single(r => r.Path == "/hook").Body;
        Assert.Equal("1", hook.GetProperty("version").GetString());
        var alert = Assert.Single(hook.GetProperty("alerts").EnumerateArray().ToArray());
        Assert.Equal("firing", alert.GetProperty("status").GetString());
        Assert.Equal("fp-1", alert.GetProperty("fingerprint").GetString());
        Assert.Equal("vision", alert.GetProperty("labels").GetProperty("team").GetString());
        Assert.Equal(JsonValueKind.Null, alert.GetProperty("ends_at").ValueKind);
        Assert.Equal("http://burnrate.internal:9840/alerts", alert.GetProperty("generator_url").GetString());
        var slack = receiver.Requests.Single(r => r.Path == "/slack").Body;
        Assert.Equal("[FIRING] idle-gpu: GPU idle for 30m", slack.GetProperty("text").GetString());
        Assert.Equal("section", slack.GetProperty("blocks")[0].GetProperty("type").GetString());
    }
}
