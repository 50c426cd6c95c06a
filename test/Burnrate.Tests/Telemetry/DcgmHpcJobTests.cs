using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Burnrate.Configuration;
using Burnrate.Inventory;
using Burnrate.Pricing;
using Burnrate.Rating;
using Burnrate.Telemetry;
using Burnrate.Telemetry.Mapping;
using Burnrate.Tests.Protocols;
using Burnrate.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace Burnrate.Tests.Telemetry;

/// <summary>
/// Issue 7, dcgm-exporter's HPC job mapping: series labelled <c>hpc_job</c> (the Slurm job on that GPU) give the GPU to
/// the workload the Slurm connector names that job by (<c>slurm:4242</c>), with or without the connector.
/// </summary>
public sealed class DcgmHpcJobTests : IAsyncDisposable
{
    private static readonly DateTimeOffset s_t0 = new(2026, 3, 2, 12, 0, 0, TimeSpan.Zero);

    private readonly string _dir = Directory.CreateTempSubdirectory("burnrate-hpc-").FullName;
    private readonly FakeTimeProvider _time = new(s_t0.AddMinutes(45));
    private readonly HttpClient _http = new();
    private LiveServer? _server;

    private static SomeSeries Gpu(int gpu, string? job, DateTimeOffset at)
    {
        var labels = new List<(string, string)>
        {
            ("__name__", "DCGM_FI_DEV_GPU_UTIL"), ("Hostname", "gpu01"), ("UUID", "GPU-0000000" + gpu.ToString(CultureInfo.InvariantCulture)),
            ("gpu", gpu.ToString(CultureInfo.InvariantCulture)), ("modelName", "NVIDIA A100-SXM4-80GB"),
        };
        if (job is not null)
            labels.Add(("hpc_job", job));
        return new SomeSeries([.. labels], [(at.ToUnixTimeMilliseconds(), 90)]);
    }

    [Fact]
    public async Task Remote_written_dcgm_series_with_hpc_job_give_the_gpu_to_that_slurm_jobs_workload()
    {
        var ct = TestContext.Current.CancellationToken;
        _server = await LiveServer.StartAsync(Path.Combine(_dir, "server"), _time);
        // The node as the Slurm connector reports it (on-prem, $2.10/GPU-hour, 2 GPUs); no job and no allocation.
        var node = """
            [{"type": "price_changed", "time": "2026-03-02T11:59:00Z", "provider": "onprem", "region": "hpc1", "instance_type": "slurm-a100x2", "capacity": "on_demand", "usd_per_hour": "4.20"},
             {"type": "node_started", "time": "2026-03-02T11:59:00Z", "node": {"id": "gpu01", "provider": "onprem", "region": "hpc1", "instance_type": "slurm-a100x2", "capacity": "on_demand", "gpus": 2, "gpu_model": "a100"}}]
            """;
        using (var r = await _http.PostAsync(_server.Url + "/api/v1/events", new StringContent(node, Encoding.UTF8, "application/json"), ct))
            Assert.Equal(HttpStatusCode.Accepted, r.StatusCode);

        // Every minute one scrape: job 4242 on GPU 1 from 12:00 to 12:20 (then its label is gone), GPU 0 never labelled.
        for (var m = 0; m <= 30; m++)
        {
            var at = s_t0.AddMinutes(m);
            var body = RemoteWriteRequests.Snappy(RemoteWriteRequests.V1Message([Gpu(0, null, at), Gpu(1, m < 20 ? "4242" : null, at)]));
            var content = new ByteArrayContent(body);
            content.Headers.ContentType = MediaTypeHeaderValue.Parse(RemoteWriteRequests.V1ContentType);
            content.Headers.ContentEncoding.Add("snappy");
            using var request = new HttpRequestMessage(HttpMethod.Post, _server.Url + "/api/v1/write") { Content = content };
            request.Headers.Add("X-Prometheus-Remote-Write-Version", "0.1.0");
            using var response = await _http.SendAsync(request, ct);
            Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        }

        await _server.Ingest.RateAsync(s_t0.AddMinutes(45), ct);
        var costs = await CostsByWorkloadAsync(ct);
        // GPU 1 of 2 at $4.20/h for exactly 20 minutes: $0.70.
        Assert.Equal(0.70m, costs["slurm:4242"]);
    }

    [Fact]
    public async Task A_job_the_connector_reports_later_joins_the_workload_the_label_made_and_keeps_its_name()
    {
        var ct = TestContext.Current.CancellationToken;
        _server = await LiveServer.StartAsync(Path.Combine(_dir, "server"), _time);
        var node = """
            [{"type": "price_changed", "time": "2026-03-02T11:59:00Z", "provider": "onprem", "region": "hpc1", "instance_type": "slurm-a100x2", "capacity": "on_demand", "usd_per_hour": "4.20"},
             {"type": "node_started", "time": "2026-03-02T11:59:00Z", "node": {"id": "gpu01", "provider": "onprem", "region": "hpc1", "instance_type": "slurm-a100x2", "capacity": "on_demand", "gpus": 2, "gpu_model": "a100"}}]
            """;
        using (var r = await _http.PostAsync(_server.Url + "/api/v1/events", new StringContent(node, Encoding.UTF8, "application/json"), ct))
            Assert.Equal(HttpStatusCode.Accepted, r.StatusCode);
        var body = RemoteWriteRequests.Snappy(RemoteWriteRequests.V1Message([Gpu(0, "4242", s_t0), Gpu(1, null, s_t0)]));
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = MediaTypeHeaderValue.Parse(RemoteWriteRequests.V1ContentType);
        content.Headers.ContentEncoding.Add("snappy");
        using (var request = new HttpRequestMessage(HttpMethod.Post, _server.Url + "/api/v1/write") { Content = content })
        {
            request.Headers.Add("X-Prometheus-Remote-Write-Version", "0.1.0");
            using var response = await _http.SendAsync(request, ct);
            Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        }
        await _server.Ingest.DrainAsync(ct);
        // The connector's poll, lagging: the job's start (with its user and account) and its stop at 12:10.
        var job = """
            [{"type": "workload_started", "time": "2026-03-02T12:00:00Z", "workload": {"id": "slurm:4242", "orchestrator": "slurm", "name": "train", "user": "ana", "project": "physics"}},
             {"type": "workload_stopped", "time": "2026-03-02T12:10:00Z", "workload_id": "slurm:4242"}]
            """;
        using (var r = await _http.PostAsync(_server.Url + "/api/v1/events", new StringContent(job, Encoding.UTF8, "application/json"), ct))
            Assert.Equal(HttpStatusCode.Accepted, r.StatusCode);

        await _server.Ingest.RateAsync(s_t0.AddMinutes(45), ct);
        var costs = await CostsByWorkloadAsync(ct);
        Assert.Equal(0.35m, costs["slurm:4242"]); // GPU 0 of 2 at $4.20/h, 12:00–12:10
        var workload = JsonDocument.Parse(await _http.GetStringAsync(_server.Url + "/api/v1/workloads/slurm:4242", ct)).RootElement;
        Assert.Equal(("ana", "slurm"), (workload.GetProperty("user").GetString(), workload.GetProperty("orchestrator").GetString()));
    }

    [Fact]
    public void The_label_wins_over_the_connectors_guess_of_the_gpu_indexes_and_shared_gpus_split_evenly()
    {
        var (book, rateCard) = PricingSetup.Load(new BurnrateConfig());
        var engine = new RatingEngine(book, rateCard);
        engine.Apply(new PriceChanged(s_t0.AddMinutes(-1), "onprem", "hpc1", "", "slurm-a100x2", CapacityType.OnDemand, 4.20m));
        engine.Apply(new NodeStarted(s_t0.AddMinutes(-1), new NodeSpec("gpu01", "onprem", "hpc1", "", "slurm-a100x2", CapacityType.OnDemand, 2, "a100", "hpc1")));
        // The connector, without squeue's indexes, guessed GPU 0 for job 7; the exporter says it runs on GPU 1, shared with job 8.
        engine.Apply(new GpuAllocated(s_t0, "slurm:7", "gpu01", 0, GpuShare.Whole));
        var mapper = new TelemetryMapper();
        var page = """
            DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-a",Hostname="gpu01"} 0
            DCGM_FI_DEV_GPU_UTIL{gpu="1",UUID="GPU-b",Hostname="gpu01",hpc_job="7"} 80
            DCGM_FI_DEV_GPU_UTIL{gpu="1",UUID="GPU-b",Hostname="gpu01",hpc_job="8"} 80
            """;

        var events = mapper.Map(new Burnrate.Protocols.Exposition.ExpositionParser(strict: true).Parse(Encoding.UTF8.GetBytes(page), s_t0.ToUnixTimeMilliseconds()).Samples);
        foreach (var e in events)
            engine.Apply(e);

        Assert.Equal(["slurm:7@1 1/2", "slurm:8@1 1/2"], events.OfType<GpuAllocated>().Select(a => $"{a.WorkloadId}@{a.GpuIndex} {a.Share.Numerator}/{a.Share.Denominator}").Order(StringComparer.Ordinal));
        // Neither job holds GPU 0, whatever was said before: both are released from it (job 8 held nothing there).
        Assert.Equal(["slurm:7@0", "slurm:8@0"], events.OfType<GpuReleased>().Select(r => $"{r.WorkloadId}@{r.GpuIndex}").Order(StringComparer.Ordinal));
        var lines = engine.RateMinute(s_t0).Lines;
        var byWorkload = lines.GroupBy(l => l.WorkloadId).ToDictionary(g => g.Key, g => g.Sum(l => l.Cost.Nanos));
        Assert.Equal(17_500_000L, byWorkload["slurm:7"]); // a quarter of $4.20/h for a minute
        Assert.Equal(17_500_000L, byWorkload["slurm:8"]);
        Assert.Equal(70_000_000L, lines.Sum(l => l.Cost.Nanos));

        // The next scrape without the labels: both jobs give GPU 1 back.
        var later = mapper.Map(new Burnrate.Protocols.Exposition.ExpositionParser(strict: true).Parse(Encoding.UTF8.GetBytes("""
            DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-a",Hostname="gpu01"} 0
            DCGM_FI_DEV_GPU_UTIL{gpu="1",UUID="GPU-b",Hostname="gpu01"} 0
            """), s_t0.AddMinutes(1).ToUnixTimeMilliseconds()).Samples);
        Assert.Equal(["slurm:7@1", "slurm:8@1"], later.OfType<GpuReleased>().Select(r => $"{r.WorkloadId}@{r.GpuIndex}").Order(StringComparer.Ordinal));
        Assert.Empty(later.OfType<GpuAllocated>());
    }

    private async Task<Dictionary<string, decimal>> CostsByWorkloadAsync(CancellationToken ct)
    {
        var body = await _http.GetStringAsync(_server!.Url + "/api/v1/costs?by=workload&from=2026-03-02T11:00:00Z&to=2026-03-02T13:00:00Z", ct);
        return JsonDocument.Parse(body).RootElement.GetProperty("rows").EnumerateArray()
            .ToDictionary(r => r.GetProperty("keys").GetProperty("workload").GetString()!, r => decimal.Parse(r.GetProperty("cost_usd").GetString()!, CultureInfo.InvariantCulture));
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
            await _server.DisposeAsync();
        _http.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}
