using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace Burnrate.AlertLatency;

/// <summary>
/// Alert latency, end to end: starts <c>burnrate serve</c> (the Release build) with one <c>spend_rate</c> rule that
/// notifies a webhook in this process directly and through Debian's Alertmanager, then, trial after trial, posts the
/// launch of a new 8-GPU job (the evidence: node_started, workload_started, gpu_allocated) and times the firing alert's
/// arrival at the webhook from the moment the request was sent. Prints p50/p90/p99/max per path as a Markdown table.
/// </summary>
public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        Options options;
        try
        {
            options = Options.Parse(args);
        }
        catch (FormatException e)
        {
            await Console.Error.WriteLineAsync("error: " + e.Message + "\n\n" + Options.Usage);
            return 2;
        }
        if (options.Help)
        {
            Console.WriteLine(Options.Usage);
            return 0;
        }
        if (options.ClickHouse is not null)
            return await RulerMode.RunAsync(options);
        foreach (var (path, what) in new[] { (options.Burnrate, "--burnrate"), (options.Alertmanager, "--alertmanager") })
        {
            if (!File.Exists(path))
            {
                await Console.Error.WriteLineAsync($"error: {what} {path} does not exist (build Release, or apt-get install prometheus-alertmanager)");
                return 1;
            }
        }

        var dir = Directory.CreateTempSubdirectory("burnrate-alert-latency-").FullName;
        using var receiver = new Receiver(FreePort());
        var amPort = FreePort();
        var burnratePort = FreePort();
        await File.WriteAllTextAsync(Path.Combine(dir, "alertmanager.yml"), $"""
            route:
              receiver: capture
              group_by: [alertname, workload]
              group_wait: 0s
              group_interval: 1s
              repeat_interval: 1h
            receivers:
              - name: capture
                webhook_configs:
                  - url: {receiver.Url}am
            """);
        await File.WriteAllTextAsync(Path.Combine(dir, "burnrate.yaml"), $"""
            rules:
              - name: bench-runaway
                kind: spend_rate
                above_usd_per_hour: 20
                for: {options.For.TotalSeconds.ToString(CultureInfo.InvariantCulture)}s
            notify:
              - webhook: {receiver.Url}hook
              - alertmanager: http://127.0.0.1:{amPort}
            """);
        using var alertmanager = Start(options.Alertmanager, $"--config.file={dir}/alertmanager.yml --storage.path={dir}/am --web.listen-address=127.0.0.1:{amPort} --cluster.listen-address= --log.level=warn", Path.Combine(dir, "alertmanager.log"));
        using var burnrate = Start(options.Burnrate, $"serve --listen 127.0.0.1:{burnratePort} --data {dir}/data --config {dir}/burnrate.yaml", Path.Combine(dir, "burnrate.log"));
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var burnrateUrl = $"http://127.0.0.1:{burnratePort}";
        try
        {
            await WaitReadyAsync(http, $"http://127.0.0.1:{amPort}/-/ready");
            await WaitReadyAsync(http, burnrateUrl + "/healthz");

            var direct = new List<double>();
            var viaAlertmanager = new List<double>();
            var missed = 0;
            var timeout = options.For + TimeSpan.FromSeconds(10);
            for (var trial = -options.Warmup; trial < options.Trials; trial++)
            {
                var id = $"bench:{trial + options.Warmup}";
                var now = DateTimeOffset.UtcNow;
                var sent = Stopwatch.GetTimestamp();
                using (var response = await http.PostAsync(burnrateUrl + "/api/v1/events", Json(Launch(id, now))))
                    response.EnsureSuccessStatusCode();
                var hook = receiver.WaitAsync("hook", id, timeout);
                var am = receiver.WaitAsync("am", id, timeout);
                var (hookAt, amAt) = (await hook, await am);
                if (trial >= 0)
                {
                    if (hookAt is { } h)
                        direct.Add(Stopwatch.GetElapsedTime(sent, h.At).TotalMilliseconds);
                    if (amAt is { } a)
                        viaAlertmanager.Add(Stopwatch.GetElapsedTime(sent, a.At).TotalMilliseconds);
                    if (hookAt is null || amAt is null)
                        missed++;
                }
                using (var response = await http.PostAsync(burnrateUrl + "/api/v1/events", Json(Stop(id, DateTimeOffset.UtcNow))))
                    response.EnsureSuccessStatusCode();
                if (trial >= 0 && (trial + 1) % 20 == 0)
                    await Console.Error.WriteLineAsync($"  {trial + 1}/{options.Trials} trials");
                await Task.Delay(options.Pause);
            }

            Console.WriteLine($"Alert latency, launch posted → firing notification received, `for: {options.For.TotalSeconds}s`, {options.Trials} trials ({options.Warmup} warm-up), {Environment.ProcessorCount} cores");
            Console.WriteLine();
            Console.WriteLine("| path | received | p50 ms | p90 ms | p99 ms | max ms |");
            Console.WriteLine("|---|---:|---:|---:|---:|---:|");
            Row("webhook, direct", direct, options.Trials);
            Row("through Alertmanager (group_wait 0s)", viaAlertmanager, options.Trials);
            return missed == 0 ? 0 : 3;
        }
        finally
        {
            Stop(burnrate);
            Stop(alertmanager);
            if (!options.Keep)
                Directory.Delete(dir, recursive: true);
            else
                await Console.Error.WriteLineAsync("kept " + dir);
        }
    }

    internal static void Row(string name, List<double> ms, int trials)
    {
        if (ms.Count == 0)
        {
            Console.WriteLine($"| {name} | 0/{trials} | | | | |");
            return;
        }
        ms.Sort();
        double P(double q) => ms[Math.Min(ms.Count - 1, (int)Math.Ceiling(q * ms.Count) - 1)];
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {name} | {ms.Count}/{trials} | {P(0.5):0.0} | {P(0.9):0.0} | {P(0.99):0.0} | {ms[^1]:0.0} |"));
    }

    internal static object[] Launch(string id, DateTimeOffset at, string? node = null, int gpus = 8)
    {
        node ??= "node-" + id;
        var time = at.ToString("O", CultureInfo.InvariantCulture);
        var events = new List<object>
        {
            new Dictionary<string, object>
            {
                ["type"] = "node_started", ["time"] = time,
                ["node"] = new Dictionary<string, object> { ["id"] = node, ["provider"] = "aws", ["region"] = "us-east-1", ["zone"] = "us-east-1a", ["instance_type"] = "p4d.24xlarge", ["capacity"] = "on-demand", ["gpus"] = 8, ["gpu_model"] = "A100" },
            },
            new Dictionary<string, object> { ["type"] = "workload_started", ["time"] = time, ["workload"] = new Dictionary<string, object> { ["id"] = id, ["name"] = id, ["team"] = "bench" } },
        };
        for (var g = 0; g < gpus; g++)
            events.Add(new Dictionary<string, object> { ["type"] = "gpu_allocated", ["time"] = time, ["workload_id"] = id, ["node_id"] = node, ["gpu_index"] = g });
        return [.. events];
    }

    internal static object[] Stop(string id, DateTimeOffset at, string? node = null)
    {
        node ??= "node-" + id;
        var time = at.ToString("O", CultureInfo.InvariantCulture);
        return
        [
            new Dictionary<string, object> { ["type"] = "workload_stopped", ["time"] = time, ["workload_id"] = id },
            new Dictionary<string, object> { ["type"] = "node_stopped", ["time"] = time, ["node_id"] = node },
        ];
    }

    internal static StringContent Json(object value) => new(JsonSerializer.Serialize(value), Encoding.UTF8, "application/json");

    internal static Process Start(string file, string arguments, string log)
    {
        var process = new Process { StartInfo = new ProcessStartInfo(file, arguments) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false } };
        var writer = TextWriter.Synchronized(new StreamWriter(log) { AutoFlush = true });
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) writer.WriteLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) writer.WriteLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    internal static void Stop(Process process)
    {
        if (process.HasExited)
            return;
        process.Kill(entireProcessTree: true);
        process.WaitForExit(10_000);
    }

    internal static async Task WaitReadyAsync(HttpClient http, string url)
    {
        var deadline = Stopwatch.GetTimestamp();
        while (Stopwatch.GetElapsedTime(deadline) < TimeSpan.FromSeconds(60))
        {
            try
            {
                if ((await http.GetAsync(url)).IsSuccessStatusCode)
                    return;
            }
            catch (HttpRequestException)
            {
            }
            await Task.Delay(100);
        }
        throw new TimeoutException(url + " never answered");
    }

    internal static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Receives webhook posts (Burnrate's own and Alertmanager's) and notes when each firing alert arrived.</summary>
    internal sealed class Receiver : IDisposable
    {
        private readonly HttpListener _listener = new();
        private readonly ConcurrentDictionary<(string Path, string Workload), TaskCompletionSource<Arrival>> _arrivals = new();

        public Receiver(int port)
        {
            Url = $"http://127.0.0.1:{port}/";
            _listener.Prefixes.Add(Url);
            _listener.Start();
            _ = Task.Run(LoopAsync);
        }

        public string Url { get; }

        /// <summary>Firing notifications per path received so far (a count, to show nothing fired twice).</summary>
        public ConcurrentDictionary<string, int> Firing { get; } = new();

        public async Task<Arrival?> WaitAsync(string path, string workload, TimeSpan timeout)
        {
            var arrival = _arrivals.GetOrAdd((path, workload), _ => new TaskCompletionSource<Arrival>(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
            return await Task.WhenAny(arrival, Task.Delay(timeout)) == arrival ? arrival.Result : null;
        }

        private async Task LoopAsync()
        {
            while (_listener.IsListening)
            {
                HttpListenerContext context;
                try
                {
                    context = await _listener.GetContextAsync();
                }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException)
                {
                    return;
                }
                var at = Stopwatch.GetTimestamp();
                var utc = DateTimeOffset.UtcNow;
                var path = context.Request.Url!.AbsolutePath.Trim('/');
                using (var document = await JsonDocument.ParseAsync(context.Request.InputStream))
                {
                    foreach (var alert in document.RootElement.GetProperty("alerts").EnumerateArray())
                    {
                        if (alert.GetProperty("status").GetString() == "firing" && alert.GetProperty("labels").TryGetProperty("workload", out var w))
                        {
                            Firing.AddOrUpdate(path, 1, (_, n) => n + 1);
                            DateTimeOffset? evidence = alert.TryGetProperty("evidence_at", out var e) ? e.GetDateTimeOffset() : null;
                            _arrivals.GetOrAdd((path, w.GetString()!), _ => new TaskCompletionSource<Arrival>(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult(new Arrival(at, utc, evidence));
                        }
                    }
                }
                context.Response.StatusCode = 200;
                context.Response.Close();
            }
        }

        public void Dispose() => _listener.Close();
    }

    /// <summary>When a firing notification arrived (stopwatch and wall clock) and the evidence time it carried (webhooks).</summary>
    internal sealed record Arrival(long At, DateTimeOffset Utc, DateTimeOffset? Evidence);

    internal sealed record Options(int Trials, int Warmup, TimeSpan For, TimeSpan Pause, string Burnrate, string Alertmanager, bool Keep, bool Help)
    {
        public string? ClickHouse { get; init; }
        public TimeSpan Every { get; init; } = TimeSpan.FromSeconds(10);
        public TimeSpan Grace { get; init; } = TimeSpan.FromSeconds(30);
        public TimeSpan Settle { get; init; } = TimeSpan.FromSeconds(45);

        public const string Usage = """
            Usage: burnrate-alert-latency [options]      (benchmark/alert-latency.sh builds and runs it)

            Times the sample → notification path: posts a new 8-GPU job's launch to `burnrate serve` with a spend_rate
            rule (above $20/h) and measures when its firing alert arrives at a webhook in this process, directly and
            through Alertmanager, for each trial. Prints a Markdown table (results: docs/performance.md).

              --trials N          measured trials (default 200)
              --warmup N          unmeasured trials first (default 10)
              --for DURATION      the rule's `for`, in seconds, e.g. 0s, 30s (default 0s); the target is p99 < 1 s + for
              --pause DURATION    pause between trials in milliseconds (default 200ms)
              --burnrate PATH     the burnrate executable (default src/Burnrate/bin/Release/net10.0/burnrate)
              --alertmanager PATH the Alertmanager executable (default /usr/bin/prometheus-alertmanager)
              --keep              keep the temporary directory (configs, logs) and print where it is

            Ruler mode (benchmark/alert-latency.sh --ruler starts a throw-away ClickHouse and passes --clickhouse):
              --clickhouse URL    run two `serve --role ingest` and a `serve --role ruler` on this ClickHouse, beside a
                                  single `serve` (DuckDB); every --every a new job holds 4 GPUs behind each ingester
                                  (above the rule only in total); times launch → firing at the ruler's webhook and
                                  the end of the evidence minute → firing, and the single process's launch → firing
              --every DURATION    seconds between launches in ruler mode (default 10s); --trials launches in all
              --grace DURATION    the ingesters' rating.grace (default 30s)
              --settle DURATION   the ruler's ruler.settle (default 45s)
              -h, --help          show this help
            """;

        public static Options Parse(string[] args)
        {
            var o = new Options(200, 10, TimeSpan.Zero, TimeSpan.FromMilliseconds(200), "src/Burnrate/bin/Release/net10.0/burnrate", "/usr/bin/prometheus-alertmanager", false, false);
            for (var i = 0; i < args.Length; i++)
            {
                var arg = args[i];
                string Value() => i + 1 < args.Length ? args[++i] : throw new FormatException(arg + " needs a value");
                o = arg switch
                {
                    "-h" or "--help" => o with { Help = true },
                    "--trials" => o with { Trials = int.TryParse(Value(), out var n) && n > 0 ? n : throw new FormatException("--trials takes a positive number") },
                    "--warmup" => o with { Warmup = int.TryParse(Value(), out var w) && w >= 0 ? w : throw new FormatException("--warmup takes a number ≥ 0") },
                    "--for" => o with { For = Seconds(arg, Value(), "s") },
                    "--pause" => o with { Pause = TimeSpan.FromMilliseconds(Seconds(arg, Value(), "ms").TotalSeconds) },
                    "--burnrate" => o with { Burnrate = Value() },
                    "--alertmanager" => o with { Alertmanager = Value() },
                    "--keep" => o with { Keep = true },
                    "--clickhouse" => o with { ClickHouse = Value() },
                    "--every" => o with { Every = Seconds(arg, Value(), "s") },
                    "--grace" => o with { Grace = Seconds(arg, Value(), "s") },
                    "--settle" => o with { Settle = Seconds(arg, Value(), "s") },
                    _ => throw new FormatException($"unknown option {arg}"),
                };
            }
            return o;
        }

        private static TimeSpan Seconds(string option, string text, string unit) =>
            text.EndsWith(unit, StringComparison.Ordinal) && double.TryParse(text[..^unit.Length], NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v >= 0
                ? TimeSpan.FromSeconds(v)
                : throw new FormatException($"{option} takes a number followed by {unit}, e.g. 0{unit}, got '{text}'");
    }
}
