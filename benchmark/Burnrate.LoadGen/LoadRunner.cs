using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using Burnrate.Protocols.RemoteWrite;

namespace Burnrate.LoadGen;

/// <summary>What one connection saw during the measured window.</summary>
internal sealed class SenderStats
{
    /// <summary>Each acknowledged request's latency, from its first send to its 2xx, retries included (Stopwatch ticks).</summary>
    public List<long> AckLatencies { get; } = new(4096);

    /// <summary>Each 2xx attempt's own latency (the server's answer time for a request it took).</summary>
    public List<long> AttemptLatencies { get; } = new(4096);

    public long Samples { get; set; }
    public long Requests { get; set; }
    public long Busy { get; set; }
    public long Errors { get; set; }
    public long Rounds { get; set; }
    public string? FirstError { get; set; }
}

/// <summary>The client's view of one run against one server.</summary>
internal sealed record LoadResult(
    TimeSpan Window,
    long Samples,
    long Requests,
    long Busy,
    long Errors,
    double P50Ms,
    double P99Ms,
    double P99AttemptMs,
    double MaxMs,
    long MinRounds,
    string? FirstError);

/// <summary>
/// Sends the plan to one server: one task per connection, each sending its own requests in order, round after round,
/// with the round's timestamp (wall clock, strictly increasing per connection, so no series ever goes back in time)
/// and the round's values. A 503 or 429 is retried after its <c>Retry-After</c>, like Prometheus does; any other
/// failure is counted and the request dropped. Only requests acknowledged inside the measured window count.
/// </summary>
internal sealed class LoadRunner(Fleet fleet, LoadPlan plan, ServerUnderTest target)
{
    private static readonly MediaTypeHeaderValue s_protobuf = new(RemoteWriteEncoder.ContentType);

    private long _measureStart = long.MaxValue;
    private long _measureEnd = long.MaxValue;
    private volatile bool _stop;

    /// <summary>Acknowledged samples so far in the window, for the progress line.</summary>
    private long _windowSamples;

    /// <summary>
    /// Runs <paramref name="warmup"/> unmeasured (it creates every series), then measures for <paramref name="duration"/>;
    /// <paramref name="atWindowStart"/>, <paramref name="atWindowEnd"/> and <paramref name="progress"/> let the caller
    /// read server counters and print.
    /// </summary>
    public async Task<LoadResult> RunAsync(TimeSpan warmup, TimeSpan duration, Func<Task> atWindowStart, Func<Task> atWindowEnd, Action<string> progress, CancellationToken cancellationToken)
    {
        using var handler = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = plan.PerConnection.Length,
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            AutomaticDecompression = DecompressionMethods.None,
            UseProxy = false,
        };
        using var client = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(60) };
        client.DefaultRequestHeaders.UserAgent.ParseAdd("Burnrate-LoadGen/1.0");
        var stats = plan.PerConnection.Select(_ => new SenderStats()).ToArray();
        var senders = plan.PerConnection.Select((batches, c) => Task.Run(() => SendAsync(client, batches, stats[c], cancellationToken), cancellationToken)).ToArray();

        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < warmup && !senders.Any(s => s.IsCompleted))
        {
            progress($"warm-up {clock.Elapsed.TotalSeconds,4:0}/{warmup.TotalSeconds:0} s");
            await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
        }
        await atWindowStart();
        Volatile.Write(ref _measureStart, Stopwatch.GetTimestamp());
        var window = Stopwatch.StartNew();
        var lastSamples = 0L;
        var lastTime = TimeSpan.Zero;
        while (window.Elapsed < duration && !senders.Any(s => s.IsCompleted))
        {
            await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
            var samples = Interlocked.Read(ref _windowSamples);
            var now = window.Elapsed;
            var rate = (samples - lastSamples) / (now - lastTime).TotalSeconds;
            (lastSamples, lastTime) = (samples, now);
            progress($"measure {now.TotalSeconds,4:0}/{duration.TotalSeconds:0} s  {rate,12:N0} samples/s now, {samples / now.TotalSeconds,12:N0} average  503s {stats.Sum(s => s.Busy)}  errors {stats.Sum(s => s.Errors)}");
        }
        Volatile.Write(ref _measureEnd, Stopwatch.GetTimestamp());
        var elapsed = window.Elapsed;
        await atWindowEnd();
        _stop = true;
        await Task.WhenAll(senders);

        var acks = stats.SelectMany(s => s.AckLatencies).Order().ToArray();
        var attempts = stats.SelectMany(s => s.AttemptLatencies).Order().ToArray();
        return new LoadResult(
            elapsed,
            stats.Sum(s => s.Samples),
            stats.Sum(s => s.Requests),
            stats.Sum(s => s.Busy),
            stats.Sum(s => s.Errors),
            Percentile(acks, 0.50),
            Percentile(acks, 0.99),
            Percentile(attempts, 0.99),
            acks.Length == 0 ? double.NaN : Milliseconds(acks[^1]),
            stats.Min(s => s.Rounds),
            stats.Select(s => s.FirstError).FirstOrDefault(e => e is not null));
    }

    private async Task SendAsync(HttpClient client, RequestBatch[] batches, SenderStats stats, CancellationToken cancellationToken)
    {
        if (batches.Length == 0)
            return;
        var body = new byte[batches.Max(b => b.MaxCompressedBytes)];
        long round = 0;
        long lastTimestamp = 0;
        while (!_stop)
        {
            round++;
            var timestamp = Math.Max(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), lastTimestamp + 1);
            lastTimestamp = timestamp;
            var completeRound = true;
            foreach (var batch in batches)
            {
                if (_stop)
                {
                    completeRound = false;
                    break;
                }
                var length = batch.Render(fleet, round, timestamp, body);
                var first = Stopwatch.GetTimestamp();
                while (true)
                {
                    using var request = new HttpRequestMessage(HttpMethod.Post, target.WriteUri)
                    {
                        Content = new ByteArrayContent(body, 0, length),
                    };
                    request.Content.Headers.ContentType = s_protobuf;
                    request.Content.Headers.ContentEncoding.Add("snappy");
                    request.Headers.Add("X-Prometheus-Remote-Write-Version", RemoteWriteEncoder.VersionHeader);
                    var attempt = Stopwatch.GetTimestamp();
                    HttpStatusCode status;
                    TimeSpan? retryAfter = null;
                    string? error = null;
                    try
                    {
                        using var response = await client.SendAsync(request, cancellationToken);
                        status = response.StatusCode;
                        if (!response.IsSuccessStatusCode)
                        {
                            var text = await response.Content.ReadAsStringAsync(cancellationToken);
                            error = $"{(int)status}: {text.Trim()}";
                            retryAfter = response.Headers.RetryAfter?.Delta;
                        }
                    }
                    catch (HttpRequestException e)
                    {
                        status = 0;
                        error = e.Message;
                    }
                    var done = Stopwatch.GetTimestamp();
                    var measured = done >= Volatile.Read(ref _measureStart) && done <= Volatile.Read(ref _measureEnd);
                    if (error is null)
                    {
                        if (measured)
                        {
                            stats.AckLatencies.Add(done - first);
                            stats.AttemptLatencies.Add(done - attempt);
                            stats.Samples += batch.Samples;
                            stats.Requests++;
                            Interlocked.Add(ref _windowSamples, batch.Samples);
                        }
                        break;
                    }
                    if (status is HttpStatusCode.ServiceUnavailable or HttpStatusCode.TooManyRequests)
                    {
                        if (measured)
                            stats.Busy++;
                        await Task.Delay(retryAfter ?? TimeSpan.FromSeconds(1), cancellationToken);
                        if (_stop)
                            break;
                        continue;
                    }
                    if (measured)
                        stats.Errors++;
                    stats.FirstError ??= error;
                    break;
                }
            }
            if (completeRound && Volatile.Read(ref _measureStart) <= Stopwatch.GetTimestamp())
                stats.Rounds++;
        }
    }

    private static double Percentile(long[] sorted, double p) =>
        sorted.Length == 0 ? double.NaN : Milliseconds(sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)]);

    private static double Milliseconds(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;

    /// <summary>A number for the table, invariant culture.</summary>
    public static string Format(double value, string format) => double.IsNaN(value) ? "–" : value.ToString(format, CultureInfo.InvariantCulture);
}
