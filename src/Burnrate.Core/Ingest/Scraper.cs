using System.Net.Http.Headers;
using Burnrate.Protocols.Exposition;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Burnrate.Ingest;

/// <summary>One <c>/metrics</c> page to scrape: its job name, URL, interval and timeout (config <c>scrape.jobs</c>).</summary>
public sealed record ScrapeTarget(string Job, Uri Url, TimeSpan Interval, TimeSpan Timeout)
{
    /// <summary>The <c>instance</c> label: <c>host:port</c> of the URL.</summary>
    public string Instance => Url.IsDefaultPort ? Url.Host + ":" + (Url.Scheme == Uri.UriSchemeHttps ? "443" : "80") : Url.Authority;
}

/// <summary>How the last scrape of a target went.</summary>
public sealed record ScrapeHealth(ScrapeTarget Target, DateTimeOffset? LastScrape, TimeSpan LastDuration, int LastSamples, string? LastError, long Scrapes, long Failures);

/// <summary>
/// Scrapes Prometheus text exposition targets on their intervals (on the injected clock) and hands each page to the
/// <see cref="IngestPipeline"/> like any other input: parsed with our own exposition parser, labelled with <c>job</c>
/// and <c>instance</c> as Prometheus does, logged in the write-ahead log, queued. A target that fails, times out or
/// answers non-2xx is logged once per change of error and retried on its next interval; the others go on.
/// </summary>
public sealed partial class Scraper
{
    /// <summary>The largest page read (64 MiB); a larger one fails the scrape.</summary>
    public const int MaxPageBytes = 64 << 20;

    private readonly IngestPipeline _ingest;
    private readonly IReadOnlyList<ScrapeTarget> _targets;
    private readonly HttpClient _http;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ScrapeState[] _state;

    public Scraper(IngestPipeline ingest, IReadOnlyList<ScrapeTarget> targets, HttpClient http, TimeProvider? time = null, ILogger? logger = null)
    {
        _ingest = ingest;
        _targets = targets;
        _http = http;
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
        _state = [.. targets.Select(t => new ScrapeState(t))];
    }

    /// <summary>The targets and how their last scrape went.</summary>
    public IReadOnlyList<ScrapeHealth> Health
    {
        get
        {
            var result = new List<ScrapeHealth>(_state.Length);
            foreach (var s in _state)
            {
                lock (s)
                    result.Add(new ScrapeHealth(s.Target, s.LastScrape, s.LastDuration, s.LastSamples, s.LastError, s.Scrapes, s.Failures));
            }
            return result;
        }
    }

    /// <summary>Scrapes every target until cancelled: first at once, then every interval.</summary>
    public Task RunAsync(CancellationToken cancellationToken) =>
        Task.WhenAll(_state.Select(s => LoopAsync(s, cancellationToken)));

    /// <summary>Scrapes one target once; returns whether its page was accepted.</summary>
    public async Task<bool> ScrapeOnceAsync(int targetIndex, CancellationToken cancellationToken)
    {
        var state = _state[targetIndex];
        var target = state.Target;
        var started = _time.GetUtcNow();
        var startedTicks = _time.GetTimestamp();
        string? error = null;
        var samples = 0;
        try
        {
            using var timeout = new CancellationTokenSource(target.Timeout, _time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
            using var request = new HttpRequestMessage(HttpMethod.Get, target.Url);
            request.Headers.Accept.Add(MediaTypeWithQualityHeaderValue.Parse("text/plain;version=0.0.4"));
            request.Headers.Add("X-Prometheus-Scrape-Timeout-Seconds", target.Timeout.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, linked.Token).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                error = $"HTTP {(int)response.StatusCode} {response.ReasonPhrase}";
            }
            else if (response.Content.Headers.ContentLength > MaxPageBytes)
            {
                error = $"page of {response.Content.Headers.ContentLength} bytes exceeds {MaxPageBytes}";
            }
            else
            {
                var page = await ReadPageAsync(response, linked.Token).ConfigureAwait(false);
                if (page is null)
                {
                    error = $"page exceeds {MaxPageBytes} bytes";
                }
                else
                {
                    var parsed = state.Parser.Parse(page, started.ToUnixTimeMilliseconds());
                    samples = parsed.Samples.Count;
                    if (parsed.Errors.Count > 0)
                        LogMalformed(_logger, target.Url, parsed.SkippedLines, parsed.Errors[0].Message);
                    var record = new IngestRecord(IngestKind.Exposition, started, target.Job + "\n" + target.Instance, page);
                    var payload = IngestPayload.OfSamples(IngestDecoder.WithTargetLabels(parsed.Samples, target.Job, target.Instance));
                    if (!_ingest.TryAccept(record, payload))
                        error = "ingest queue full; page dropped";
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            error = $"timed out after {target.Timeout.TotalSeconds:0.###}s";
        }
        catch (HttpRequestException e)
        {
            error = e.Message;
        }
        catch (IOException e)
        {
            error = e.Message;
        }
        var duration = _time.GetElapsedTime(startedTicks);
        lock (state)
        {
            if (error != state.LastError)
            {
                if (error is null)
                    LogRecovered(_logger, target.Url);
                else
                    LogFailed(_logger, target.Url, error);
            }
            state.LastScrape = started;
            state.LastDuration = duration;
            state.LastSamples = samples;
            state.LastError = error;
            state.Scrapes++;
            if (error is not null)
                state.Failures++;
        }
        return error is null;
    }

    private async Task LoopAsync(ScrapeState state, CancellationToken cancellationToken)
    {
        var index = Array.IndexOf(_state, state);
        while (!cancellationToken.IsCancellationRequested)
        {
            var started = _time.GetTimestamp();
            try
            {
                await ScrapeOnceAsync(index, cancellationToken).ConfigureAwait(false);
                var wait = state.Target.Interval - _time.GetElapsedTime(started);
                if (wait > TimeSpan.Zero)
                    await Task.Delay(wait, _time, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
        }
    }

    private static async Task<byte[]?> ReadPageAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            using var page = new MemoryStream();
            var chunk = new byte[64 * 1024];
            int read;
            while ((read = await stream.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
            {
                if (page.Length + read > MaxPageBytes)
                    return null;
                page.Write(chunk, 0, read);
            }
            return page.ToArray();
        }
    }

    private sealed class ScrapeState(ScrapeTarget target)
    {
        public ScrapeTarget Target { get; } = target;
        public ExpositionParser Parser { get; } = new();
        public DateTimeOffset? LastScrape { get; set; }
        public TimeSpan LastDuration { get; set; }
        public int LastSamples { get; set; }
        public string? LastError { get; set; }
        public long Scrapes { get; set; }
        public long Failures { get; set; }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "scrape {Url} failed: {Error} (retrying every interval)")]
    private static partial void LogFailed(ILogger logger, Uri url, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "scrape {Url} is back")]
    private static partial void LogRecovered(ILogger logger, Uri url);

    [LoggerMessage(Level = LogLevel.Warning, Message = "scrape {Url}: {Skipped} malformed lines skipped; first: {First}")]
    private static partial void LogMalformed(ILogger logger, Uri url, int skipped, string first);
}
