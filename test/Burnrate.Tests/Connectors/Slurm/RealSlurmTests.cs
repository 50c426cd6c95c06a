using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Burnrate.Cli;
using Burnrate.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace Burnrate.Tests.Connectors.Slurm;

/// <summary>
/// <c>burnrate serve</c> with the Slurm connector on, against a real single-node Slurm 22.05 (slurmctld, slurmd,
/// slurmdbd on MariaDB, munge; two fake GPUs): jobs submitted with sbatch and srun, with accounts and GPUs, appear as
/// workloads with sacct's exact start and end and a cost of exactly $/GPU-hour × GPUs × seconds; a cancelled job stops
/// costing at its end. The server's clock is a fake one kept at the wall clock (the jobs run for real) and moved past
/// the jobs' minutes at the end, so nothing waits for a real minute to close.
/// </summary>
public sealed partial class RealSlurmTests(SlurmCluster cluster) : IClassFixture<SlurmCluster>, IDisposable
{
    private const decimal GpuHour = 3.60m; // $0.001 per GPU-second: every expected cost below is exact

    private readonly string _data = Directory.CreateTempSubdirectory("burnrate-real-slurm-").FullName;
    private readonly StringWriter _out = new();
    private readonly StringWriter _error = new();
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow);
    private readonly HttpClient _http = new();

    [Fact]
    public async Task Sbatch_and_srun_jobs_with_accounts_and_gpus_are_workloads_with_exact_start_end_and_cost_and_a_cancelled_job_stops_costing_at_its_end()
    {
        cluster.Require();
        var ct = TestContext.Current.CancellationToken;
        var config = Path.Combine(_data, "burnrate.yaml");
        await File.WriteAllTextAsync(config, $"""
            connectors:
              slurm:
                cluster: {SlurmCluster.Name}
                interval: 1s
                gpu_rates: {"{"} fake: "{GpuHour.ToString(CultureInfo.InvariantCulture)}" {"}"}
            """, ct);
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
        var url = await WaitForUrlAsync(run);

        var train = (await SlurmCluster.CommandAsync("sbatch", "--parsable", "-A", "physics", "-p", "gpu", "--gres=gpu:1", "-J", "br-train", "-t", "1", "--wrap", "sleep 3")).Trim();
        var cancelled = (await SlurmCluster.CommandAsync("sbatch", "--parsable", "-A", "research", "-p", "gpu", "--gres=gpu:1", "-J", "br-cancel", "-t", "1", "--wrap", "sleep 300")).Trim();
        await UntilAsync(async () => (await SacctAsync(train)).State == "COMPLETED" && (await SacctAsync(cancelled)).State == "RUNNING", "br-train to complete while br-cancel runs");
        // An interactive step-launched job takes the GPU br-train gave back.
        var srun = (await SlurmCluster.CommandAsync("srun", "-A", "research", "-p", "gpu", "--gres=gpu:1", "-J", "br-srun", "-t", "1", "bash", "-c", "echo $SLURM_JOB_ID; sleep 2")).Trim();
        Assert.Matches("^[0-9]+$", srun);
        await SlurmCluster.CommandAsync("scancel", cancelled);
        var jobs = new[] { train, cancelled, srun };
        await UntilAsync(async () => (await Task.WhenAll(jobs.Select(SacctAsync))).All(j => j.End is not null), "sacct to record every end");
        await UntilAsync(async () => (await ConnectorAsync()).GetProperty("tracked").GetInt32() == 0
            && (await ConnectorAsync()).GetProperty("events").GetInt64() > 0, "the connector to report every end");

        // Move the server's clock past the jobs' last minute (+ the 30 s grace): the rating loop writes them.
        var records = (await Task.WhenAll(jobs.Select(SacctAsync))).ToList();
        var last = records.Max(r => r.End!.Value);
        _time.SetUtcNow(new DateTimeOffset(last.Year, last.Month, last.Day, last.Hour, last.Minute, 0, TimeSpan.Zero).AddMinutes(1).AddSeconds(31));
        await UntilAsync(async () => (await CostsAsync(url, "workload")).ContainsKey("slurm:" + cancelled), "the ledger to hold the jobs", nudge: false);

        var costs = await CostsAsync(url, "workload");
        foreach (var (id, record) in jobs.Zip(records))
        {
            // The reference: sacct's own start, end and allocated GPUs, priced by hand.
            var seconds = (decimal)(record.End!.Value - record.Start!.Value).TotalSeconds;
            var expected = (record.Gpus * GpuHour * seconds / 3600m).ToString("0.000000000", CultureInfo.InvariantCulture);
            Assert.Equal((id, 1), (id, record.Gpus));
            Assert.Equal((id, expected), (id, costs.GetValueOrDefault("slurm:" + id, "0.000000000")));
            var workload = JsonDocument.Parse(await _http.GetStringAsync($"{url}/api/v1/workloads/slurm:{id}", ct)).RootElement;
            Assert.Equal((id, record.Start.Value, record.End.Value), (id, workload.GetProperty("started").GetDateTimeOffset(), workload.GetProperty("ended").GetDateTimeOffset()));
            Assert.Equal("slurm", workload.GetProperty("orchestrator").GetString());
            Assert.Equal("root", workload.GetProperty("user").GetString());
        }
        Assert.True(records[1].End!.Value - records[1].Start!.Value < TimeSpan.FromSeconds(60), "br-cancel was cancelled, not run to its 300 s");
        Assert.Equal("CANCELLED", records[1].State);
        var byProject = await CostsAsync(url, "project");
        Assert.Equal(costs["slurm:" + train], byProject["physics"]); // the account is the project

        // Nothing of the cancelled job burns any more; the node's GPUs are idle.
        var burn = JsonDocument.Parse(await _http.GetStringAsync(url + "/api/v1/burn", ct)).RootElement;
        Assert.DoesNotContain(burn.GetProperty("workloads").EnumerateArray(), w => w.GetProperty("workload").GetString()!.StartsWith("slurm:", StringComparison.Ordinal)
            && w.GetProperty("usd_per_hour").GetString() != "0.000000000");

        var health = await ConnectorAsync();
        Assert.Equal("ok", health.GetProperty("status").GetString());
        Assert.Equal("squeue openapi/v0.0.38 sacct openapi/dbv0.0.38", health.GetProperty("source").GetString());
        Assert.Contains("burnrate_connector_up{connector=\"slurm\",kind=\"slurm\"} 1\n", await _http.GetStringAsync(url + "/metrics", ct), StringComparison.Ordinal);

        await stop.CancelAsync();
        Assert.Equal(0, await run);
    }

    private sealed record Accounting(string State, DateTimeOffset? Start, DateTimeOffset? End, int Gpus);

    private static async Task<Accounting> SacctAsync(string job)
    {
        var line = (await SlurmCluster.CommandAsync("sacct", "-n", "-X", "-P", "-j", job, "--format=State,Start,End,AllocTRES")).Trim();
        if (line.Length == 0)
            return new Accounting("", null, null, 0);
        var f = line.Split('|');
        static DateTimeOffset? Time(string t) => DateTime.TryParseExact(t, "yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var d)
            ? new DateTimeOffset(d, TimeSpan.Zero) : null;
        var gpus = Regex.Match(f[3], @"gres/gpu=(\d+)") is { Success: true } m ? int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
        return new Accounting(f[0].Split(' ')[0], Time(f[1]), Time(f[2]), gpus);
    }

    private async Task<JsonElement> ConnectorAsync()
    {
        var url = UrlPattern().Match(_out.ToString()).Value;
        var body = await _http.GetFromJsonAsync<JsonElement>(url + "/api/v1/connectors", TestContext.Current.CancellationToken);
        return body.GetProperty("connectors").EnumerateArray().Single();
    }

    private async Task<Dictionary<string, string>> CostsAsync(string url, string by)
    {
        var body = await _http.GetStringAsync($"{url}/api/v1/costs?by={by}&from=-1d", TestContext.Current.CancellationToken);
        return JsonDocument.Parse(body).RootElement.GetProperty("rows").EnumerateArray()
            .ToDictionary(r => r.GetProperty("keys").GetProperty(by).GetString()!, r => r.GetProperty("cost_usd").GetString()!);
    }

    /// <summary>Waits (up to 90 s) for <paramref name="condition"/>, keeping the server's clock at the wall clock so it polls.</summary>
    private async Task UntilAsync(Func<Task<bool>> condition, string what, bool nudge = true)
    {
        for (var i = 0; i < 450; i++)
        {
            if (nudge && DateTimeOffset.UtcNow > _time.GetUtcNow())
                _time.SetUtcNow(DateTimeOffset.UtcNow);
            if (await condition())
                return;
            await Task.Delay(200, TestContext.Current.CancellationToken);
        }
        Assert.Fail($"timed out waiting for {what}; serve said: {_out}{_error}");
    }

    private async Task<string> WaitForUrlAsync(Task<int> run)
    {
        string? url = null;
        for (var i = 0; i < 600 && url is null && !run.IsCompleted; i++)
        {
            url = UrlPattern().Match(_out.ToString()) is { Success: true } m ? m.Value : null;
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
        Assert.True(url is not null, "serve never said where it listens: " + _out + _error);
        return url;
    }

    [GeneratedRegex(@"http://127\.0\.0\.1:\d+")]
    private static partial Regex UrlPattern();

    public void Dispose()
    {
        _http.Dispose();
        Directory.Delete(_data, recursive: true);
    }
}
