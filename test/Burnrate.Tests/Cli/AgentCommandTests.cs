using System.Text.Json;
using System.Text.RegularExpressions;
using Burnrate.Cli;
using Microsoft.Extensions.Time.Testing;

namespace Burnrate.Tests.Cli;

/// <summary>
/// <c>burnrate agent</c> as a user runs it: its help and usage errors, a missing or failing nvidia-smi, and a fake
/// nvidia-smi on a p4d.24xlarge pushing to an in-process <c>burnrate serve</c> on a fake clock.
/// </summary>
public sealed partial class AgentCommandTests : IDisposable
{
    private static readonly DateTimeOffset s_start = new(2025, 6, 15, 12, 0, 0, TimeSpan.Zero);
    private const string Node = "gpu-box-1";
    private const string A100 = "NVIDIA A100-SXM4-40GB";

    private readonly string _dir = Directory.CreateTempSubdirectory("burnrate-agent-").FullName;
    private readonly FakeTimeProvider _time = new(s_start);
    private readonly HttpClient _http = new();
    private readonly Dictionary<string, string> _environment = new(StringComparer.Ordinal);

    private CliServices Services(TextWriter output, TextWriter error)
    {
        var real = Composition.CreateServices();
        return new CliServices
        {
            OpenStore = real.OpenStore,
            LoadPriceBook = real.LoadPriceBook,
            Out = TextWriter.Synchronized(output),
            Error = TextWriter.Synchronized(error),
            Time = _time,
            GetEnvironmentVariable = name => _environment.GetValueOrDefault(name),
        };
    }

    private async Task<(int Exit, string Out, string Error)> RunAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await BurnrateCli.InvokeAsync(Services(output, error), args, TestContext.Current.CancellationToken);
        return (exit, output.ToString(), error.ToString());
    }

    /// <summary>A stand-in for nvidia-smi: a shell script that records its arguments and prints <paramref name="stdout"/>.</summary>
    private string FakeNvidiaSmi(string stdout, int exitCode = 0)
    {
        Assert.SkipWhen(OperatingSystem.IsWindows(), "the fake nvidia-smi is a POSIX shell script");
        var path = Path.Combine(_dir, $"nvidia-smi-{Guid.NewGuid():N}");
        File.WriteAllText(path, $"""
            #!/bin/sh
            printf '%s\n' "$@" > "{path}.args"
            cat <<'OUTPUT'
            {stdout.TrimEnd('\n')}
            OUTPUT
            exit {exitCode}

            """.ReplaceLineEndings("\n"));
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    [Fact]
    public async Task Help_explains_what_the_agent_reads_sends_and_how_it_fails()
    {
        var (exit, output, _) = await RunAsync("agent", "--help");

        Assert.Equal(0, exit);
        foreach (var text in new[] { "nvidia-smi", "burnrate_node_info", "remote write", "/api/v1/write", "--server", "--interval", "--node", "--provider",
            "--region", "--zone", "--instance-type", "--capacity", "--label", "--nvidia-smi", "--once", "4xx", "retried with backoff", "exit 1" })
            Assert.Contains(text, output, StringComparison.Ordinal);
        Assert.Contains("agent", (await RunAsync("--help")).Out, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Option '--server' is required", "agent")]
    [InlineData("--server: 'ftp://x' is not an http(s) URL", "agent", "--server", "ftp://x")]
    [InlineData("--interval: 'soon' is not a duration", "agent", "--server", "http://127.0.0.1:1", "--interval", "soon")]
    [InlineData("--interval: '500ms' is not a duration of at least 1s", "agent", "--server", "http://127.0.0.1:1", "--interval", "500ms")]
    [InlineData("--capacity: 'cheap' is not a capacity type", "agent", "--server", "http://127.0.0.1:1", "--capacity", "cheap")]
    [InlineData("--label: 'team' is not NAME=VALUE", "agent", "--server", "http://127.0.0.1:1", "--label", "team")]
    [InlineData("--label: '9lives' is not a label name", "agent", "--server", "http://127.0.0.1:1", "--label", "9lives=x")]
    [InlineData("--label: 'instance_type' is set by its own option", "agent", "--server", "http://127.0.0.1:1", "--label", "instance_type=x")]
    [InlineData("--label: 'team' is given twice", "agent", "--server", "http://127.0.0.1:1", "--label", "team=a", "--label", "team=b")]
    public async Task Mistakes_in_the_command_line_are_usage_errors(string message, params string[] args)
    {
        var (exit, _, error) = await RunAsync(args);

        Assert.Equal(2, exit);
        Assert.Contains("error: " + message, error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_nvidia_smi_is_a_clear_error()
    {
        var missing = Path.Combine(_dir, "no-such-nvidia-smi");

        var (exit, _, error) = await RunAsync("agent", "--server", "http://127.0.0.1:1", "--node", Node, "--instance-type", "p4d.24xlarge", "--nvidia-smi", missing, "--once");

        Assert.Equal(1, exit);
        Assert.Contains($"error: cannot run nvidia-smi at '{missing}'", error, StringComparison.Ordinal);
        Assert.Contains("install the NVIDIA driver (it ships nvidia-smi) or pass --nvidia-smi PATH", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_failing_nvidia_smi_is_a_clear_error_with_what_it_said()
    {
        var failing = FakeNvidiaSmi(
            "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.\n",
            exitCode: 9);

        var (exit, _, error) = await RunAsync("agent", "--server", "http://127.0.0.1:1", "--node", Node, "--instance-type", "p4d.24xlarge", "--nvidia-smi", failing, "--once");

        Assert.Equal(1, exit);
        Assert.Contains($"error: nvidia-smi at '{failing}' failed (exit code 9): NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unreachable_server_makes_once_fail_after_retrying_for_the_interval()
    {
        var smi = FakeNvidiaSmi(P4dGpus);
        using var output = new StringWriter();
        using var error = new StringWriter();
        var run = BurnrateCli.InvokeAsync(Services(output, error),
            ["agent", "--server", "http://127.0.0.1:1", "--node", Node, "--nvidia-smi", smi, "--interval", "5s", "--once"], TestContext.Current.CancellationToken);
        // The clock moves only once the first push has failed, so nvidia-smi's own timeout (on the same clock) cannot fire.
        for (var i = 0; i < 2_000 && !run.IsCompleted && !error.ToString().Contains("push to", StringComparison.Ordinal); i++)
            await Task.Delay(5, TestContext.Current.CancellationToken);
        for (var i = 0; i < 2_000 && !run.IsCompleted; i++)
        {
            await Task.Delay(5, TestContext.Current.CancellationToken);
            _time.Advance(TimeSpan.FromMilliseconds(200));
        }

        Assert.Equal(1, await run);
        Assert.Contains("warning: no --instance-type", error.ToString(), StringComparison.Ordinal);
        Assert.Contains("warning: agent: push to http://127.0.0.1:1/api/v1/write failed", error.ToString(), StringComparison.Ordinal);
        Assert.Contains("error: could not push to http://127.0.0.1:1/api/v1/write within 5 s", error.ToString(), StringComparison.Ordinal);
    }

    /// <summary>
    /// What nvidia-smi prints for the agent's query (<c>--format=csv,noheader,nounits</c>, the fields of
    /// NvidiaSmiCsv.Fields) on a p4d.24xlarge: eight A100-SXM4-40GB in the telemetry-formats.md §6 row format, bare
    /// numbers (nounits) and a placeholder where the capture has them. GPU 7 is idle; GPU 5 reads no power.
    /// </summary>
    private const string P4dGpus = """
        0, GPU-6f1b6c61-4a6e-9d1c-2f4b-8a0b1c2d3e40, NVIDIA A100-SXM4-40GB, 00000000:10:1C.0, 100, 11, 19818, 20716, 40960, 631.95, 59, 1410, Disabled
        1, GPU-6f1b6c61-4a6e-9d1c-2f4b-8a0b1c2d3e41, NVIDIA A100-SXM4-40GB, 00000000:10:1D.0, 97, 12, 19818, 20716, 40960, 612.40, 58, 1410, Disabled
        2, GPU-6f1b6c61-4a6e-9d1c-2f4b-8a0b1c2d3e42, NVIDIA A100-SXM4-40GB, 00000000:20:1C.0, 99, 11, 19818, 20716, 40960, 640.10, 60, 1410, Disabled
        3, GPU-6f1b6c61-4a6e-9d1c-2f4b-8a0b1c2d3e43, NVIDIA A100-SXM4-40GB, 00000000:20:1D.0, 98, 10, 19818, 20716, 40960, 598.33, 57, 1410, Disabled
        4, GPU-6f1b6c61-4a6e-9d1c-2f4b-8a0b1c2d3e44, NVIDIA A100-SXM4-40GB, 00000000:90:1C.0, 100, 11, 19818, 20716, 40960, 633.02, 61, 1410, Disabled
        5, GPU-6f1b6c61-4a6e-9d1c-2f4b-8a0b1c2d3e45, NVIDIA A100-SXM4-40GB, 00000000:90:1D.0, 96, 11, 19818, 20716, 40960, [N/A], 59, 1410, Disabled
        6, GPU-6f1b6c61-4a6e-9d1c-2f4b-8a0b1c2d3e46, NVIDIA A100-SXM4-40GB, 00000000:A0:1C.0, 100, 12, 19818, 20716, 40960, 629.87, 60, 1410, Disabled
        7, GPU-6f1b6c61-4a6e-9d1c-2f4b-8a0b1c2d3e47, NVIDIA A100-SXM4-40GB, 00000000:A0:1D.0, 0, 0, 0, 40536, 40960, 69.85, 41, 345, Disabled
        """;

    [Fact]
    public async Task The_agent_pushes_a_p4d_to_serve_which_burns_it_at_the_catalog_price_with_its_eight_gpus()
    {
        var ct = TestContext.Current.CancellationToken;
        var smi = FakeNvidiaSmi(P4dGpus);
        using var serveOut = new StringWriter();
        using var serveError = new StringWriter();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var serve = BurnrateCli.InvokeAsync(Services(serveOut, serveError), ["serve", "--listen", "127.0.0.1:0", "--data", Path.Combine(_dir, "data")], stop.Token);
        string? url = null;
        for (var i = 0; i < 600 && url is null && !serve.IsCompleted; i++)
        {
            url = UrlPattern().Match(serveOut.ToString()) is { Success: true } m ? m.Value : null;
            await Task.Delay(50, ct);
        }
        Assert.True(url is not null, "serve never said where it listens: " + serveOut + serveError);
        string[] agent = ["agent", "--server", url, "--node", Node, "--provider", "aws", "--region", "us-east-1", "--zone", "us-east-1a",
            "--instance-type", "p4d.24xlarge", "--capacity", "on-demand", "--label", "team=research", "--nvidia-smi", smi, "--once"];

        // Rounds at 12:00:00 and 12:00:15: the node is alive from the first and burning now.
        var first = await RunAsync(agent);
        Assert.True(first.Exit == 0, first.Error);
        Assert.Equal($"pushed 8 GPUs (64 samples) of node {Node} to {url}/api/v1/write\n", first.Out.ReplaceLineEndings("\n"));
        Assert.Equal("", first.Error);
        var args = File.ReadAllLines(smi + ".args");
        Assert.Equal(["--query-gpu=index,uuid,name,pci.bus_id,utilization.gpu,utilization.memory,memory.used,memory.free,memory.total,power.draw,temperature.gpu,clocks.sm,mig.mode.current",
            "--format=csv,noheader,nounits"], args);
        _time.SetUtcNow(s_start.AddSeconds(15));
        Assert.Equal(0, (await RunAsync(agent)).Exit);

        // Catalog (aws.yaml): p4d.24xlarge on-demand in us-east-1 is $21.957642/h; nobody holds its GPUs: all idle.
        JsonElement burn = default;
        for (var i = 0; i < 400; i++)
        {
            burn = JsonDocument.Parse(await _http.GetStringAsync(url + "/api/v1/burn", ct)).RootElement;
            if (burn.GetProperty("total_usd_per_hour").GetString() != "0.000000000")
                break;
            await Task.Delay(25, ct); // the ingest queue applies the write after the 204
        }
        Assert.Equal("21.957642000", burn.GetProperty("total_usd_per_hour").GetString());
        var idle = Assert.Single(burn.GetProperty("workloads").EnumerateArray());
        Assert.Equal(("", "aws", "21.957642000"),
            (idle.GetProperty("workload").GetString(), idle.GetProperty("clouds").GetString(), idle.GetProperty("usd_per_hour").GetString()));

        // A round at 12:01:00 covers the minute 12:00, which closes at 12:01:30 (minute end + 30 s grace). Its ledger rows
        // carry the 8 GPUs and their model, the idle owner from --label team: 8 × 60 GPU-seconds, and the minute's price
        // split as in EventsEndToEndTests:
        // 8 GPU lines of 29,254,087 n$ + the compute line 131,928,000 n$ = $0.365960696.
        _time.SetUtcNow(s_start.AddMinutes(1));
        Assert.Equal(0, (await RunAsync(agent)).Exit);
        _time.SetUtcNow(s_start.AddSeconds(90));
        JsonElement? row = null;
        for (var i = 0; i < 400 && row is null; i++)
        {
            var costs = JsonDocument.Parse(await _http.GetStringAsync(url + "/api/v1/costs?by=resource,gpu,team&from=2025-06-15T12:00:00Z&to=2025-06-15T12:01:00Z", ct)).RootElement;
            row = costs.GetProperty("rows").EnumerateArray().Select(r => (JsonElement?)r).FirstOrDefault();
            if (row is null)
            {
                await Task.Delay(25, ct);
                if (i % 20 == 19 && _time.GetUtcNow() < s_start.AddSeconds(115))
                    _time.Advance(TimeSpan.FromSeconds(1)); // nudges the 5 s rating timer
            }
        }
        Assert.True(row is not null, "the node never reached the ledger: " + serveOut + serveError);
        var keys = row.Value.GetProperty("keys");
        Assert.Equal((Node, A100, "research"), (keys.GetProperty("resource").GetString(), keys.GetProperty("gpu").GetString(), keys.GetProperty("team").GetString()));
        Assert.Equal(480, row.Value.GetProperty("gpu_seconds").GetDecimal());
        Assert.Equal("0.365960696", row.Value.GetProperty("cost_usd").GetString());
        Assert.Equal("0.365960696", row.Value.GetProperty("idle_usd").GetString());

        await stop.CancelAsync();
        Assert.Equal(0, await serve);
        Assert.DoesNotContain("warning", serveError.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task With_api_keys_serve_refuses_a_push_without_the_ingest_key_and_takes_it_with_the_key_from_the_environment()
    {
        var ct = TestContext.Current.CancellationToken;
        var smi = FakeNvidiaSmi(P4dGpus);
        var config = Path.Combine(_dir, "burnrate.yaml");
        await File.WriteAllTextAsync(config, $"auth:\n  keys:\n    - {{ name: agents, scopes: [ingest], env: AGENT_KEY_FOR_SERVE }}\n", ct);
        _environment["AGENT_KEY_FOR_SERVE"] = "agent-secret";
        using var serveOut = new StringWriter();
        using var serveError = new StringWriter();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var serve = BurnrateCli.InvokeAsync(Services(serveOut, serveError), ["serve", "--listen", "127.0.0.1:0", "--data", Path.Combine(_dir, "data"), "--config", config], stop.Token);
        string? url = null;
        for (var i = 0; i < 600 && url is null && !serve.IsCompleted; i++)
        {
            url = UrlPattern().Match(serveOut.ToString()) is { Success: true } m ? m.Value : null;
            await Task.Delay(50, ct);
        }
        Assert.True(url is not null, "serve never said where it listens: " + serveOut + serveError);
        Assert.Contains("1 API keys", serveOut.ToString(), StringComparison.Ordinal);
        string[] agent = ["agent", "--server", url, "--node", Node, "--provider", "aws", "--region", "us-east-1",
            "--instance-type", "p4d.24xlarge", "--nvidia-smi", smi, "--once"];

        var without = await RunAsync(agent);
        Assert.Equal(1, without.Exit);
        Assert.Contains("401", without.Error, StringComparison.Ordinal);

        _environment["BURNRATE_API_KEY"] = "agent-secret";
        var with = await RunAsync(agent);
        Assert.True(with.Exit == 0, with.Error);
        Assert.Contains("pushed 8 GPUs", with.Out, StringComparison.Ordinal);

        // The ingest key does not read.
        using var request = new HttpRequestMessage(HttpMethod.Get, url + "/api/v1/burn");
        request.Headers.Authorization = new("Bearer", "agent-secret");
        using var read = await _http.SendAsync(request, ct);
        Assert.Equal(System.Net.HttpStatusCode.Forbidden, read.StatusCode);
        Assert.DoesNotContain("agent-secret", serveOut.ToString() + serveError, StringComparison.Ordinal);

        await stop.CancelAsync();
        Assert.Equal(0, await serve);
    }

    [GeneratedRegex(@"http://127\.0\.0\.1:\d+")]
    private static partial Regex UrlPattern();

    public void Dispose()
    {
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
