using System.Threading.Channels;
using Burnrate.Ingest;
using Burnrate.Pricing;
using Burnrate.Protocols.Exposition;
using Burnrate.Rating;
using Burnrate.Storage;
using Burnrate.Telemetry;
using Burnrate.Telemetry.Mapping;
using Burnrate.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using FakeCostStore = Burnrate.Tests.Cli.FakeCostStore;

namespace Burnrate.Tests.Ingest;

/// <summary>
/// The built-in scraper against a real HTTP server on loopback serving the exporter pages in <c>Ingest/Fixtures</c>:
/// pages go into the ingest pipeline labelled with <c>job</c> and <c>instance</c>; a failing, slow or absent target is
/// recorded in <see cref="Scraper.Health"/> and retried, never thrown; the loop scrapes once per interval of its clock.
/// </summary>
public sealed class ScraperTests : IAsyncDisposable
{
    private static readonly DateTimeOffset s_noon = new(2026, 3, 2, 12, 0, 0, TimeSpan.Zero);
    private static readonly string s_fixtures = Path.Combine(AppContext.BaseDirectory, "Ingest", "Fixtures");

    /// <summary>A page whose own labels are named like the target labels, as a federating or pushing exporter writes.</summary>
    private const string LabelledPage = """
        # TYPE app_requests_total counter
        app_requests_total{job="inner",instance="10.0.0.9:8080",path="/"} 42
        # TYPE app_up gauge
        app_up 1

        """;

    private readonly string _dir = Directory.CreateTempSubdirectory("burnrate-scrape-").FullName;
    private readonly TimerWatchingTimeProvider _time = new(s_noon);
    private readonly HttpClient _http = new();
    private readonly List<WebApplication> _servers = [];
    private readonly CostPipeline _cost;
    private readonly IngestPipeline _ingest;
    private WriteAheadLog? _wal;
    private int _flakyCalls;
    private int _slowCalls;
    private int _ksmCalls;

    public ScraperTests()
    {
        // The nodes of kube-state-metrics.prom: a p4d on spot ($36/h) and a p5 on demand ($98.32/h).
        var book = new FakePriceBook();
        book.Add(Some.Price("p4d.24xlarge", CapacityType.Spot, 36m, 3.6m, 8));
        book.Add(Some.Price("p5.48xlarge", CapacityType.OnDemand, 98.32m, 10m, 8));
        _cost = new CostPipeline(new RatingEngine(book, new FakeRateCard()), new FakeCostStore());
        _wal = WriteAheadLog.Open(Path.Combine(_dir, "wal"));
        _ingest = new IngestPipeline(_cost, new TelemetryMapper(), _wal);
    }

    [Fact]
    public async Task A_scraped_page_is_accepted_with_job_and_instance_labels_and_a_page_label_named_job_becomes_exported_job()
    {
        var ct = TestContext.Current.CancellationToken;
        var server = await StartServerAsync();
        var ksm = Target("kube-state-metrics", server + "/ksm");
        var app = Target("app", server + "/labelled");
        var scraper = new Scraper(_ingest, [ksm, app], _http, _time);
        var ksmPage = await File.ReadAllBytesAsync(Path.Combine(s_fixtures, "kube-state-metrics.prom"), ct);
        var ksmSamples = new ExpositionParser().Parse(ksmPage, 0).Samples.Count;

        Assert.True(await scraper.ScrapeOnceAsync(0, ct));
        Assert.True(await scraper.ScrapeOnceAsync(1, ct));

        Assert.Equal([(s_noon, ksmSamples, (string?)null, 1L, 0L), (s_noon, 2, null, 1, 0)],
            scraper.Health.Select(h => (h.LastScrape!.Value, h.LastSamples, h.LastError, h.Scrapes, h.Failures)));
        Assert.Equal(2, _ingest.Stats.Requests(IngestKind.Exposition));
        Assert.Equal(ksmSamples + 2, _ingest.Stats.Samples(IngestKind.Exposition));

        // What the log keeps (and a replay decodes) is the page as served, with its target.
        _wal!.Dispose();
        using (var reopened = WriteAheadLog.Open(Path.Combine(_dir, "wal")))
        {
            var records = reopened.ReadAll().ToList();
            Assert.Equal([IngestKind.Exposition, IngestKind.Exposition], records.Select(r => r.Kind));
            Assert.Equal(["kube-state-metrics\n" + ksm.Instance, "app\n" + app.Instance], records.Select(r => r.Source));
            Assert.Equal(ksmPage, records[0].Body.ToArray());

            var ksmDecoded = IngestDecoder.Decode(records[0]).Samples;
            Assert.Equal(ksmSamples, ksmDecoded.Count);
            Assert.All(ksmDecoded, s => Assert.Equal(("kube-state-metrics", ksm.Instance), (Label(s, "job"), Label(s, "instance"))));
            Assert.All(ksmDecoded, s => Assert.Equal(s.TimestampMs, s_noon.ToUnixTimeMilliseconds())); // no timestamps on the page: the scrape's

            var requests = IngestDecoder.Decode(records[1]).Samples.Single(s => Label(s, "__name__") == "app_requests_total");
            Assert.Equal(
                [("__name__", "app_requests_total"), ("exported_instance", "10.0.0.9:8080"), ("exported_job", "inner"), ("instance", app.Instance), ("job", "app"), ("path", "/")],
                requests.Labels.Select(l => (l.Name, l.Value)));
            Assert.Equal(42, requests.Value);
        }
        _wal = null;

        // And the samples reach the mapper: both nodes of the page burn at their prices.
        _ingest.ApplyQueued();
        var burn = _cost.Burn(s_noon.AddSeconds(10));
        Assert.Equal(HourlyRate.FromDollarsPerHour(36m + 98.32m), burn.Total);
    }

    [Fact]
    public async Task A_server_error_is_recorded_in_health_without_throwing_and_the_next_scrape_recovers()
    {
        var ct = TestContext.Current.CancellationToken;
        var server = await StartServerAsync();
        var scraper = new Scraper(_ingest, [Target("ksm", server + "/flaky")], _http, _time);

        Assert.False(await scraper.ScrapeOnceAsync(0, ct));

        var failed = Assert.Single(scraper.Health);
        Assert.Equal(("HTTP 500 Internal Server Error", 1L, 1L, 0), (failed.LastError, failed.Scrapes, failed.Failures, failed.LastSamples));
        Assert.Equal(0, _wal!.AppendedRecords); // nothing of a failed scrape is kept
        Assert.Equal(0, _ingest.QueuedItems);

        _time.Advance(TimeSpan.FromSeconds(15));
        Assert.True(await scraper.ScrapeOnceAsync(0, ct));

        var recovered = Assert.Single(scraper.Health);
        Assert.Equal(((string?)null, 2L, 1L, s_noon.AddSeconds(15)), (recovered.LastError, recovered.Scrapes, recovered.Failures, recovered.LastScrape));
        Assert.True(recovered.LastSamples > 0);
        Assert.Equal(1, _wal.AppendedRecords);
    }

    [Fact]
    public async Task A_scrape_that_outlives_its_timeout_is_recorded_as_timed_out_and_the_next_scrape_recovers()
    {
        var ct = TestContext.Current.CancellationToken;
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var server = await StartServerAsync(entered);
        var scraper = new Scraper(_ingest, [Target("ksm", server + "/slow", timeout: TimeSpan.FromSeconds(2))], _http, _time);

        // The first answer hangs; once the request is in, the scraper's clock passes its timeout.
        var scraping = scraper.ScrapeOnceAsync(0, ct);
        await entered.Task.WaitAsync(ct);
        _time.Advance(TimeSpan.FromSeconds(2));

        Assert.False(await scraping);
        var failed = Assert.Single(scraper.Health);
        Assert.Equal(("timed out after 2s", 1L), (failed.LastError, failed.Failures));
        Assert.Equal(0, _wal!.AppendedRecords);

        Assert.True(await scraper.ScrapeOnceAsync(0, ct));
        var recovered = Assert.Single(scraper.Health);
        Assert.Equal(((string?)null, 2L, 1L), (recovered.LastError, recovered.Scrapes, recovered.Failures));
        Assert.Equal(2, Volatile.Read(ref _slowCalls));
    }

    [Fact]
    public async Task A_refused_connection_is_recorded_in_health_without_throwing_and_the_next_scrape_recovers_once_the_target_listens()
    {
        var ct = TestContext.Current.CancellationToken;
        var port = RealPeer.FreePort(); // nothing listens there now
        var scraper = new Scraper(_ingest, [Target("node-exporter", $"http://127.0.0.1:{port}/metrics")], _http, _time);

        Assert.False(await scraper.ScrapeOnceAsync(0, ct));

        var failed = Assert.Single(scraper.Health);
        Assert.Contains("refused", failed.LastError, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(1, failed.Failures);
        Assert.Equal(0, _wal!.AppendedRecords);

        await StartServerAsync(port: port);
        _time.Advance(TimeSpan.FromSeconds(15));
        Assert.True(await scraper.ScrapeOnceAsync(0, ct));
        var recovered = Assert.Single(scraper.Health);
        Assert.Equal(((string?)null, 2L, 1L), (recovered.LastError, recovered.Scrapes, recovered.Failures));
    }

    [Fact]
    public async Task RunAsync_scrapes_each_target_at_once_and_then_once_per_interval_of_its_clock()
    {
        var ct = TestContext.Current.CancellationToken;
        var server = await StartServerAsync();
        var interval = TimeSpan.FromSeconds(15);
        _time.Watch(interval);
        var scraper = new Scraper(_ingest, [Target("ksm", server + "/ksm", interval: interval)], _http, _time);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);

        var running = scraper.RunAsync(stop.Token);

        // Each time the loop has scraped and armed its wait for the next interval, move the clock: first by less than
        // the interval (no scrape may happen), then to the interval.
        await _time.ArmedAsync(ct);
        Assert.Equal((1L, s_noon), (scraper.Health[0].Scrapes, scraper.Health[0].LastScrape!.Value));
        _time.Advance(interval - TimeSpan.FromSeconds(1));
        _time.Advance(TimeSpan.FromSeconds(1));
        await _time.ArmedAsync(ct);
        Assert.Equal((2L, s_noon + interval), (scraper.Health[0].Scrapes, scraper.Health[0].LastScrape!.Value));
        _time.Advance(interval);
        await _time.ArmedAsync(ct);
        Assert.Equal((3L, s_noon + 2 * interval), (scraper.Health[0].Scrapes, scraper.Health[0].LastScrape!.Value));
        Assert.Equal(3, Volatile.Read(ref _ksmCalls));
        Assert.Equal(3, _ingest.Stats.Requests(IngestKind.Exposition));

        await stop.CancelAsync();
        await running; // cancelling ends the loop quietly
        Assert.Equal(3, Volatile.Read(ref _ksmCalls));
    }

    private static ScrapeTarget Target(string job, string url, TimeSpan? interval = null, TimeSpan? timeout = null) =>
        new(job, new Uri(url), interval ?? TimeSpan.FromSeconds(15), timeout ?? TimeSpan.FromSeconds(10));

    private static string? Label(MetricSample sample, string name) => sample.Labels.FirstOrDefault(l => l.Name == name).Value;

    /// <summary>
    /// Serves the fixtures: <c>/ksm</c>, <c>/labelled</c>, <c>/flaky</c> (500 on the first request), <c>/slow</c>
    /// (the first request hangs until the client gives up) and <c>/metrics</c>.
    /// </summary>
    private async Task<string> StartServerAsync(TaskCompletionSource? slowEntered = null, int port = 0)
    {
        var ksm = await File.ReadAllTextAsync(Path.Combine(s_fixtures, "kube-state-metrics.prom"), TestContext.Current.CancellationToken);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        var app = builder.Build();
        const string ContentType = "text/plain; version=0.0.4; charset=utf-8";
        app.MapGet("/ksm", () =>
        {
            Interlocked.Increment(ref _ksmCalls);
            return Results.Text(ksm, ContentType);
        });
        app.MapGet("/metrics", () => Results.Text(ksm, ContentType));
        app.MapGet("/labelled", () => Results.Text(LabelledPage, ContentType));
        app.MapGet("/flaky", () => Interlocked.Increment(ref _flakyCalls) == 1 ? Results.StatusCode(500) : Results.Text(ksm, ContentType));
        app.MapGet("/slow", async (HttpContext context) =>
        {
            if (Interlocked.Increment(ref _slowCalls) == 1)
            {
                slowEntered?.TrySetResult();
                await Task.Delay(Timeout.Infinite, context.RequestAborted);
            }
            return Results.Text(ksm, ContentType);
        });
        await app.StartAsync(TestContext.Current.CancellationToken);
        _servers.Add(app);
        return app.Urls.First();
    }

    /// <summary>A fake clock that says when a timer of one due time (the scrape loop's wait) has been armed.</summary>
    private sealed class TimerWatchingTimeProvider(DateTimeOffset start) : FakeTimeProvider(start)
    {
        private readonly Channel<TimeSpan> _armed = Channel.CreateUnbounded<TimeSpan>();
        private TimeSpan? _watched;

        public void Watch(TimeSpan dueTime) => _watched = dueTime;

        public async Task ArmedAsync(CancellationToken cancellationToken) => await _armed.Reader.ReadAsync(cancellationToken);

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            var timer = base.CreateTimer(callback, state, dueTime, period);
            if (dueTime == _watched)
                _armed.Writer.TryWrite(dueTime);
            return timer;
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var server in _servers)
        {
            await server.StopAsync(CancellationToken.None);
            await server.DisposeAsync();
        }
        _http.Dispose();
        _ingest.Dispose();
        _cost.Dispose();
        _wal?.Dispose();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
