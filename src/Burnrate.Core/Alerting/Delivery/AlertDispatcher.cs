using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Burnrate.Alerting.Delivery;

/// <summary>How one target is doing, for <c>/metrics</c> and <c>GET /api/v1/alerts/delivery</c>. Never holds the URL.</summary>
public sealed record DeliveryTargetStatus(
    string Name,
    NotifyKind Kind,
    long Sent,
    long Failed,
    long Retries,
    long DroppedQueueFull,
    long Deduplicated,
    int Queued,
    string? LastError,
    DateTimeOffset? LastErrorAt,
    DateTimeOffset? LastSuccessAt,
    DeliveryLatency Latency);

/// <summary>
/// Firing notifications delivered to a target, by seconds from their evidence (<see cref="AlertNotification.EvidenceAt"/>)
/// to the target's 2xx answer: cumulative counts per upper bound of <see cref="AlertDispatcher.LatencyBucketsSeconds"/>
/// (Prometheus histogram buckets), their count and sum.
/// </summary>
public sealed record DeliveryLatency(IReadOnlyList<long> CumulativeBuckets, long Count, double SumSeconds);

/// <summary>
/// The alert engine's sink: fans each notification out to every target (Alertmanager v2, webhook, Slack), each with
/// its own bounded queue and sender, and hands firing alerts with an action to the <see cref="ActionRunner"/>.
/// <see cref="Publish"/> never waits on the network. docs/alerts.md, "Delivery".
/// </summary>
/// <remarks>
/// A notification is delivered to a target at most once: its key is target + fingerprint + state + startsAt, and a
/// key already delivered is skipped (counted as deduplicated). Retries (5xx, timeouts, network errors) wait on the
/// injected clock with exponential backoff; 4xx answers are not retried.
/// </remarks>
public sealed partial class AlertDispatcher : IAlertSink, IAsyncDisposable
{
    private const int BatchSize = 64;
    // Delivered keys remembered per target; the oldest are forgotten first. An alert re-published after that many
    // later deliveries would be sent again, which for these receivers is a repeat, not a loss.
    private const int RememberedKeys = 100_000;

    private readonly DeliveryOptions _options;
    private readonly HttpClient _http;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ActionRunner? _actions;
    private readonly Target[] _targets;
    private readonly Channel<AlertNotification>? _actionQueue;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _loops = [];
    private long _actionsDropped;

    /// <summary>Starts a sender per target (and an action loop when <paramref name="actions"/> is given).</summary>
    /// <param name="options">Targets, retries, queue sizes.</param>
    /// <param name="http">The client requests go through; the dispatcher does not dispose it.</param>
    /// <param name="time">The clock backoff waits on and statuses are stamped with.</param>
    /// <param name="logger">Where failures are logged (target names only, never URLs).</param>
    /// <param name="actions">Runs rule actions; null: actions are ignored.</param>
    public AlertDispatcher(DeliveryOptions options, HttpClient http, TimeProvider? time = null, ILogger? logger = null, ActionRunner? actions = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(http);
        _options = options;
        _http = http;
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
        _actions = actions;
        _targets = [.. options.Targets.Select(t => new Target(t, Channel.CreateBounded<AlertNotification>(new BoundedChannelOptions(options.QueueCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait, // TryWrite then fails: the new notification is dropped and counted
        })))];
        foreach (var target in _targets)
            _loops.Add(Task.Run(() => SendLoopAsync(target, _stop.Token)));
        if (actions is not null)
        {
            _actionQueue = Channel.CreateBounded<AlertNotification>(new BoundedChannelOptions(options.QueueCapacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
            _loops.Add(Task.Run(() => ActionLoopAsync(_actionQueue.Reader, actions, _stop.Token)));
        }
    }

    /// <summary>Each target's counters and last error.</summary>
    public IReadOnlyList<DeliveryTargetStatus> Status =>
        [.. _targets.Select(t => new DeliveryTargetStatus(
            t.Config.Name, t.Config.Kind, Interlocked.Read(ref t.Sent), Interlocked.Read(ref t.Failed), Interlocked.Read(ref t.Retries),
            Interlocked.Read(ref t.DroppedQueueFull), Interlocked.Read(ref t.Deduplicated), t.Queue.Reader.Count,
            t.LastError, t.LastErrorAt, t.LastSuccessAt, t.Latency()))];

    /// <summary>Upper bounds, in seconds, of the delivery latency histogram (the last bucket, +Inf, is implied).</summary>
    public static IReadOnlyList<double> LatencyBucketsSeconds { get; } = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

    /// <summary>Firing alerts with an action that were dropped because the action queue was full.</summary>
    public long ActionsDropped => Interlocked.Read(ref _actionsDropped);

    /// <summary>The action runner, when actions are enabled.</summary>
    public ActionRunner? Actions => _actions;

    /// <inheritdoc />
    public void Publish(IReadOnlyList<AlertNotification> notifications)
    {
        ArgumentNullException.ThrowIfNull(notifications);
        foreach (var notification in notifications)
        {
            if (notification.State is not (AlertState.Firing or AlertState.Resolved))
                continue;
            foreach (var target in _targets)
            {
                if (notification.State == AlertState.Resolved && !target.Config.SendResolved && target.Config.Kind != NotifyKind.Alertmanager)
                    continue;
                if (!target.Queue.Writer.TryWrite(notification))
                {
                    Interlocked.Increment(ref target.DroppedQueueFull);
                    Log.QueueFull(_logger, target.Config.Name, notification.Rule);
                }
            }
            if (_actionQueue is not null && notification.State == AlertState.Firing && notification.Action is not null && !_actionQueue.Writer.TryWrite(notification))
            {
                Interlocked.Increment(ref _actionsDropped);
                Log.QueueFull(_logger, "actions", notification.Rule);
            }
        }
    }

    private async Task SendLoopAsync(Target target, CancellationToken ct)
    {
        var reader = target.Queue.Reader;
        // Alertmanager forgets an alert not re-posted within its resolve_timeout: keep the firing ones to re-post.
        var active = new Dictionary<string, AlertNotification>(StringComparer.Ordinal);
        var resend = target.Config.Kind == NotifyKind.Alertmanager;
        try
        {
            var readable = reader.WaitToReadAsync(ct).AsTask();
            while (true)
            {
                if (resend && active.Count > 0 && !readable.IsCompleted)
                {
                    using var wait = CancellationTokenSource.CreateLinkedTokenSource(ct);
                    var delay = Task.Delay(_options.ResendInterval, _time, wait.Token);
                    if (await Task.WhenAny(readable, delay).ConfigureAwait(false) == delay)
                    {
                        await SendAsync(target, [.. active.Values], ct).ConfigureAwait(false);
                        continue;
                    }
                    await wait.CancelAsync().ConfigureAwait(false);
                }
                if (!await readable.ConfigureAwait(false))
                    break;
                var batch = new List<AlertNotification>();
                while (batch.Count < BatchSize && reader.TryRead(out var item))
                {
                    if (target.Delivered.Contains(Key(item)))
                        Interlocked.Increment(ref target.Deduplicated);
                    else
                        batch.Add(item);
                }
                readable = reader.WaitToReadAsync(ct).AsTask();
                if (batch.Count == 0)
                    continue;
                if (target.Config.Kind == NotifyKind.Slack)
                {
                    foreach (var one in batch)
                        await DeliverAsync(target, [one], [one], ct).ConfigureAwait(false);
                }
                else if (resend)
                {
                    foreach (var item in batch)
                    {
                        if (item.State == AlertState.Firing)
                            active[item.Fingerprint] = item;
                        else
                            active.Remove(item.Fingerprint);
                    }
                    // Every post carries all firing alerts too: Alertmanager deduplicates by labels, and each
                    // post doubles as the re-send.
                    var body = batch.Where(n => n.State == AlertState.Resolved).Concat(active.Values).ToList();
                    await DeliverAsync(target, batch, body, ct).ConfigureAwait(false);
                }
                else
                {
                    await DeliverAsync(target, batch, batch, ct).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    private async Task DeliverAsync(Target target, List<AlertNotification> notifications, List<AlertNotification> body, CancellationToken ct)
    {
        if (await SendAsync(target, body, ct).ConfigureAwait(false))
        {
            var now = _time.GetUtcNow();
            foreach (var n in notifications)
            {
                target.Remember(Key(n));
                if (n.State == AlertState.Firing && now >= n.EvidenceAt)
                    target.Observe((now - n.EvidenceAt).TotalSeconds);
            }
            Interlocked.Add(ref target.Sent, notifications.Count);
        }
        else
        {
            Interlocked.Add(ref target.Failed, notifications.Count);
        }
    }

    /// <summary>Sends one request with retries; true when a 2xx came back.</summary>
    private async Task<bool> SendAsync(Target target, List<AlertNotification> body, CancellationToken ct)
    {
        var (url, content) = target.Config.Kind switch
        {
            NotifyKind.Alertmanager => (AlertmanagerUrl(target.Config.Url), AlertPayloads.Alertmanager(body, _options.ExternalUrl)),
            NotifyKind.Webhook => (target.Config.Url, AlertPayloads.Webhook(body, _options.ExternalUrl)),
            _ => (target.Config.Url, AlertPayloads.Slack(body[0])),
        };
        var backoff = _options.InitialBackoff;
        for (var attempt = 1; ; attempt++)
        {
            var (ok, retry, error) = await AttemptAsync(url, content, ct).ConfigureAwait(false);
            if (ok)
            {
                target.LastSuccessAt = _time.GetUtcNow();
                return true;
            }
            target.LastError = error;
            target.LastErrorAt = _time.GetUtcNow();
            if (!retry || attempt >= _options.Attempts)
            {
                Log.DeliveryFailed(_logger, target.Config.Name, body.Count, attempt, error);
                return false;
            }
            Interlocked.Increment(ref target.Retries);
            Log.Retrying(_logger, target.Config.Name, error, backoff);
            await Task.Delay(backoff, _time, ct).ConfigureAwait(false);
            backoff = backoff * 2 > _options.MaxBackoff ? _options.MaxBackoff : backoff * 2;
        }
    }

    /// <summary>One POST. The error text names a status or an error kind, never the URL (it may hold a token).</summary>
    private async Task<(bool Ok, bool Retry, string Error)> AttemptAsync(Uri url, byte[] content, CancellationToken ct)
    {
        using var timeout = new CancellationTokenSource(_options.Timeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, timeout.Token);
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new ByteArrayContent(content) };
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            using var response = await _http.SendAsync(request, linked.Token).ConfigureAwait(false);
            var code = (int)response.StatusCode;
            if (response.IsSuccessStatusCode)
                return (true, false, "");
            // As Alertmanager's own notifier: 5xx is retried, anything else is the request's fault.
            return (false, code >= 500, $"HTTP {code}");
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            return (false, true, "timeout");
        }
        catch (HttpRequestException e)
        {
            var kind = e.InnerException is SocketException s ? s.SocketErrorCode.ToString() : e.HttpRequestError.ToString();
            return (false, true, "network error: " + kind);
        }
    }

    private static Uri AlertmanagerUrl(Uri baseUrl) =>
        new(new Uri(baseUrl.AbsoluteUri.EndsWith('/') ? baseUrl.AbsoluteUri : baseUrl.AbsoluteUri + "/"), "api/v2/alerts");

    private async Task ActionLoopAsync(ChannelReader<AlertNotification> reader, ActionRunner actions, CancellationToken ct)
    {
        try
        {
            await foreach (var notification in reader.ReadAllAsync(ct).ConfigureAwait(false))
            {
                try
                {
                    await actions.RunAsync(notification, ct).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    Log.ActionCrashed(_logger, notification.Rule, e);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    private static string Key(AlertNotification n) =>
        $"{n.Fingerprint}|{AlertPayloads.Status(n.State)}|{n.StartsAt.UtcTicks}";

    /// <summary>Stops taking notifications, lets the queues drain for up to <paramref name="grace"/>, then stops.</summary>
    public async Task StopAsync(TimeSpan grace)
    {
        foreach (var target in _targets)
            target.Queue.Writer.TryComplete();
        _actionQueue?.Writer.TryComplete();
        var all = Task.WhenAll(_loops);
        await Task.WhenAny(all, Task.Delay(grace, _time)).ConfigureAwait(false);
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await all.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await StopAsync(TimeSpan.Zero).ConfigureAwait(false);
        _stop.Dispose();
    }

    private sealed class Target(NotifyTarget config, Channel<AlertNotification> queue)
    {
        public NotifyTarget Config { get; } = config;
        public Channel<AlertNotification> Queue { get; } = queue;
        public HashSet<string> Delivered { get; } = new(StringComparer.Ordinal);
        private readonly Queue<string> _order = new();
        public long Sent;
        public long Failed;
        public long Retries;
        public long DroppedQueueFull;
        public long Deduplicated;
        public volatile string? LastError;
        public DateTimeOffset? LastErrorAt { get; set; }
        public DateTimeOffset? LastSuccessAt { get; set; }
        private readonly long[] _buckets = new long[LatencyBucketsSeconds.Count + 1];
        private long _latencyCount;
        private double _latencySum;
        private readonly Lock _latencyLock = new();

        public void Observe(double seconds)
        {
            lock (_latencyLock)
            {
                var i = 0;
                while (i < LatencyBucketsSeconds.Count && seconds > LatencyBucketsSeconds[i])
                    i++;
                _buckets[i]++;
                _latencyCount++;
                _latencySum += seconds;
            }
        }

        public DeliveryLatency Latency()
        {
            lock (_latencyLock)
            {
                var cumulative = new long[_buckets.Length];
                long running = 0;
                for (var i = 0; i < _buckets.Length; i++)
                    cumulative[i] = running += _buckets[i];
                return new DeliveryLatency(cumulative, _latencyCount, _latencySum);
            }
        }

        public void Remember(string key)
        {
            if (!Delivered.Add(key))
                return;
            _order.Enqueue(key);
            if (_order.Count > RememberedKeys)
                Delivered.Remove(_order.Dequeue());
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1, Level = LogLevel.Warning, Message = "Alert delivery queue '{Target}' is full: a notification of rule '{Rule}' was dropped")]
        public static partial void QueueFull(ILogger logger, string target, string rule);

        [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "Alert delivery to '{Target}' failed for {Count} notification(s) after {Attempts} attempt(s): {Error}")]
        public static partial void DeliveryFailed(ILogger logger, string target, int count, int attempts, string error);

        [LoggerMessage(EventId = 3, Level = LogLevel.Information, Message = "Alert delivery to '{Target}' failed ({Error}); retrying in {Delay}")]
        public static partial void Retrying(ILogger logger, string target, string error, TimeSpan delay);

        [LoggerMessage(EventId = 4, Level = LogLevel.Error, Message = "The action of rule '{Rule}' failed unexpectedly")]
        public static partial void ActionCrashed(ILogger logger, string rule, Exception exception);
    }
}
