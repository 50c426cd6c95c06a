using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Burnrate.Attribution;
using Burnrate.Benchmarks.Storage;
using Burnrate.Storage.DuckDb;

namespace Burnrate.Benchmarks.Api;

/// <summary>
/// Response times of the API calls the dashboard's overview and workload page make (see
/// <c>src/Burnrate.Server/dashboard/wwwroot/app.js</c>), against <c>burnrate serve</c> on a generated ledger of
/// GPUS × DAYS ending at the hour the ledger was generated; and the dashboard's first load in headless Chromium.
/// </summary>
internal static class ApiBenchmark
{
    private const string Usage = """
        API and dashboard response times on a large ledger (results: docs/performance.md).

        Usage: benchmark/api.sh [options]
          --data DIR          ledger directory, reused when it holds a finished ledger (default
                              $BURNRATE_BENCH_DIR/api-GPUSxDAYS, BURNRATE_BENCH_DIR defaulting to /tmp/burnrate-bench)
          --gpus N            GPUs in the generated fleet (default 2000; 8 per node)
          --days N            days of ledger, ending at the hour of generation (default 90)
          --regenerate        generate the ledger even if DIR holds one
          --requests N        measured requests per endpoint and mode (default 300)
          --warmup N          unmeasured requests per endpoint first (default 30)
          --clients N         concurrent clients in the concurrent mode (default 4)
          --live-nodes N      p4d.24xlarge nodes (8 GPUs each) fed as live events so /burn has content (default 250; 0: none)
          --browser-runs N    dashboard first loads, each in a new browser context (default 20; 0: skip)
          --chromium PATH     Chromium executable (default /usr/bin/chromium)
          --burnrate PATH     the burnrate executable (default src/Burnrate/bin/Release/net10.0/burnrate)
          --help              this text
        """;

    public static async Task<int> RunAsync(string[] args)
    {
        Options options;
        try
        {
            options = Options.Parse(args);
        }
        catch (ArgumentException e)
        {
            await Console.Error.WriteLineAsync("error: " + e.Message + Environment.NewLine + Environment.NewLine + Usage);
            return 2;
        }
        if (options.Help)
        {
            Console.WriteLine(Usage);
            return 0;
        }

        var ledger = await EnsureLedgerAsync(options);
        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {Machine()}");
        Console.WriteLine($"ledger: {ledger}");

        await using var server = await Server.StartAsync(options.Burnrate, options.Data);
        Console.WriteLine($"server: {server.BaseUri} (pid {server.ProcessId}), started and ready in {server.StartSeconds:F1} s");
        using var http = new HttpClient { BaseAddress = server.BaseUri, Timeout = TimeSpan.FromSeconds(60) };

        if (options.LiveNodes > 0)
            await FeedLiveAsync(http, options.LiveNodes);

        // The calls as the dashboard makes them, with its ranges worked out from the server's clock (burn.at).
        using var burnDoc = JsonDocument.Parse(await http.GetStringAsync("api/v1/burn"));
        var now = DateTimeOffset.Parse(burnDoc.RootElement.GetProperty("at").GetString()!, CultureInfo.InvariantCulture);
        Console.WriteLine($"server clock: {Iso(now)}; live burn {burnDoc.RootElement.GetProperty("total_usd_per_hour").GetString()} $/h, " +
                          $"{burnDoc.RootElement.GetProperty("workloads").GetArrayLength()} live workloads");
        var day = new DateTimeOffset(now.Year, now.Month, now.Day, 0, 0, 0, TimeSpan.Zero);
        var month = new DateTimeOffset(now.Year, now.Month, 1, 0, 0, 0, TimeSpan.Zero);
        var dayFrom = new DateTimeOffset(now.UtcTicks / TimeSpan.TicksPerHour * TimeSpan.TicksPerHour, TimeSpan.Zero).AddHours(-23);
        var historical = "job:7";
        var live = options.LiveNodes > 0 ? "job:600" : null;
        var endpoints = new List<(string Page, string Name, string Path)>
        {
            ("overview", "burn", "api/v1/burn"),
            ("overview", "costs today", $"api/v1/costs?from={Iso(day)}&to={Iso(now)}"),
            ("overview", "costs this month", $"api/v1/costs?from={Iso(month)}&to={Iso(now)}"),
            ("overview", "costs last 24 h, step 1h", $"api/v1/costs?from={Iso(dayFrom)}&to={Iso(now)}&step=1h"),
            ("overview", "alerts", "api/v1/alerts"),
            ("overview", "fleet", "api/v1/fleet"),
            ("workload", $"workload detail, {historical} (90 days of history)", "api/v1/workloads/" + Uri.EscapeDataString(historical)),
        };
        if (live is not null)
            endpoints.Add(("workload", $"workload detail, {live} (live, started now)", "api/v1/workloads/" + Uri.EscapeDataString(live)));
        endpoints.Add(("(not called by the dashboard)", "workloads list", "api/v1/workloads"));
        endpoints.Add(("(chargeback page)", "costs this month by team", $"api/v1/costs?from={Iso(month)}&to={Iso(now)}&by=team"));

        foreach (var (_, name, path) in endpoints)
        {
            using var response = await http.GetAsync(path);
            var body = await response.Content.ReadAsStringAsync();
            Console.WriteLine($"  check {name}: {(int)response.StatusCode}, {body.Length:N0} bytes: {Shorten(body)}");
            if (!response.IsSuccessStatusCode)
                throw new InvalidOperationException($"{path} answered {(int)response.StatusCode}");
        }

        var rows = new List<string>();
        foreach (var (page, name, path) in endpoints)
        {
            for (var i = 0; i < options.Warmup; i++)
                await TimeAsync(http, path);
            var sequential = new List<double>(options.Requests);
            for (var i = 0; i < options.Requests; i++)
                sequential.Add(await TimeAsync(http, path));
            var concurrent = await ConcurrentAsync(http, path, options.Requests, options.Clients);
            rows.Add($"| {page} | {name} | {Stats(sequential)} | {Stats(concurrent)} |");
            Console.WriteLine(rows[^1]);
        }

        // The overview as a page: burn first, then the other five together (as app.js does), sequential page loads.
        var overviewCalls = endpoints.Where(e => e.Page == "overview" && e.Name != "burn").Select(e => e.Path).ToArray();
        var pages = new List<double>(options.Requests);
        for (var i = 0; i < options.Warmup + options.Requests; i++)
        {
            var started = Stopwatch.GetTimestamp();
            await TimeAsync(http, "api/v1/burn");
            await Task.WhenAll(overviewCalls.Select(p => TimeAsync(http, p)));
            if (i >= options.Warmup)
                pages.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }
        rows.Add($"| overview | all six calls of one overview refresh (burn, then five at once) | {Stats(pages)} | |");

        Console.WriteLine();
        Console.WriteLine($"Response times in ms, {options.Requests} requests per endpoint after {options.Warmup} warm-up; " +
                          $"concurrent: {options.Clients} clients together, {options.Requests} requests in all.");
        Console.WriteLine();
        Console.WriteLine("| page | call | sequential p50 / p90 / p99 / max | concurrent p50 / p90 / p99 / max |");
        Console.WriteLine("|---|---|---:|---:|");
        foreach (var row in rows)
            Console.WriteLine(row);

        if (options.BrowserRuns > 0)
            await Browser.MeasureAsync(options.Chromium, server.BaseUri, options.BrowserRuns);

        Console.WriteLine();
        Console.WriteLine($"server after the run: {server.Describe()}");
        return 0;
    }

    private static async Task<double> TimeAsync(HttpClient http, string path)
    {
        var started = Stopwatch.GetTimestamp();
        using var response = await http.GetAsync(path, HttpCompletionOption.ResponseContentRead);
        var elapsed = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        if (!response.IsSuccessStatusCode)
            throw new InvalidOperationException($"{path} answered {(int)response.StatusCode}");
        return elapsed;
    }

    private static async Task<List<double>> ConcurrentAsync(HttpClient http, string path, int requests, int clients)
    {
        var all = new List<double>(requests);
        var next = 0;
        await Task.WhenAll(Enumerable.Range(0, clients).Select(async _ =>
        {
            while (Interlocked.Increment(ref next) <= requests)
            {
                var ms = await TimeAsync(http, path);
                lock (all)
                    all.Add(ms);
            }
        }));
        return all;
    }

    internal static double Percentile(List<double> values, double p)
    {
        var sorted = values.Order().ToList();
        // Nearest rank: the smallest value with at least p of the values at or below it.
        var rank = (int)Math.Ceiling(p * sorted.Count);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Count - 1)];
    }

    internal static string Stats(List<double> values) => string.Create(CultureInfo.InvariantCulture,
        $"{Percentile(values, 0.5):F1} / {Percentile(values, 0.9):F1} / {Percentile(values, 0.99):F1} / {values.Max():F1}");

    private static string Iso(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static string Shorten(string body) => body.Length <= 160 ? body : body[..160] + "…";

    private static string Machine()
    {
        var memory = File.Exists("/proc/meminfo") ? File.ReadLines("/proc/meminfo").First() : "";
        var model = File.Exists("/proc/cpuinfo") ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal)) ?? "" : "";
        var load = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "";
        return $"{model.Split(':').Last().Trim()}, {memory.Replace("  ", "", StringComparison.Ordinal)}, load average {load}, .NET {Environment.Version}";
    }

    /// <summary>Generates the ledger unless DIR already holds a finished one; adds the generated jobs' workload records.</summary>
    private static async Task<string> EnsureLedgerAsync(Options options)
    {
        Directory.CreateDirectory(options.Data);
        var path = Path.Combine(options.Data, "burnrate.duckdb");
        var done = path + ".done";
        if (options.Regenerate || !File.Exists(done))
        {
            File.Delete(done);
            File.Delete(path);
            File.Delete(path + ".wal");
            var now = DateTimeOffset.UtcNow;
            var end = new DateTimeOffset(now.UtcTicks / TimeSpan.TicksPerHour * TimeSpan.TicksPerHour, TimeSpan.Zero);
            var start = end.AddDays(-options.Days);
            Console.WriteLine($"generating {options.Gpus} GPUs x {options.Days} days ({Iso(start)} to {Iso(end)}) into {path} ...");
            var report = await LedgerGenerator.GenerateAsync(path, options.Gpus, options.Days, start);

            await File.WriteAllTextAsync(done, string.Create(CultureInfo.InvariantCulture, $"{report}; from {Iso(start)} to {Iso(end)}"));
        }

        // The generated ledger's jobs as the store's workload records (a live server keeps them from events), so the
        // workload API knows them: all started with the ledger and still running.
        await using (var store = await DuckDbCostStore.OpenAsync(path))
        {
            if ((await store.GetWorkloadsAsync()).Count == 0 && await store.GetLedgerSpanAsync() is { } span)
            {
                var records = Enumerable.Range(0, 600).Select(w => new Burnrate.Storage.WorkloadRecord(
                    new WorkloadInfo($"job:{w}", (w % 3) switch { 0 => "slurm", 1 => "kubernetes", _ => "skypilot" }, $"job-{w}",
                        User: $"user-{w % 60}", Team: $"team-{w % 12}", Project: $"project-{w % 40}"),
                    span.First, null, null)).ToList();
                await store.UpsertWorkloadsAsync(records);
            }
        }
        var text = await File.ReadAllTextAsync(done);
        var size = new FileInfo(path).Length;
        return string.Create(CultureInfo.InvariantCulture, $"{text.Trim()} (file now {size / 1e9:F2} GB)");
    }

    /// <summary>
    /// A live fleet as events: N p4d.24xlarge nodes (8 A100s) in aws us-east-1, named like the ledger's nodes, each
    /// fully held by one running workload <c>job:600</c>.. (three nodes in four) or idle, started a minute ago.
    /// </summary>
    private static async Task FeedLiveAsync(HttpClient http, int nodes)
    {
        var time = Iso(DateTimeOffset.UtcNow.AddMinutes(-1));
        var events = new List<object>();
        for (var n = 0; n < nodes; n++)
        {
            events.Add(new Dictionary<string, object>
            {
                ["type"] = "node_started", ["time"] = time,
                ["node"] = new Dictionary<string, object>
                {
                    ["id"] = $"node-{n}", ["provider"] = "aws", ["region"] = "us-east-1", ["zone"] = "us-east-1a",
                    ["instance_type"] = "p4d.24xlarge", ["capacity"] = "on_demand", ["gpus"] = 8, ["gpu_model"] = "A100",
                    ["cluster"] = $"cluster-{n % 4}", ["labels"] = new Dictionary<string, string> { ["team"] = $"team-{n % 12}" },
                },
            });
            if (n % 4 == 3)
                continue;
            var id = $"job:{600 + n}";
            events.Add(new Dictionary<string, object>
            {
                ["type"] = "workload_started", ["time"] = time, ["estimate_usd_per_hour"] = 20,
                ["workload"] = new Dictionary<string, string>
                {
                    ["id"] = id, ["orchestrator"] = "slurm", ["name"] = $"live-{n}", ["user"] = $"user-{n % 60}",
                    ["team"] = $"team-{n % 12}", ["project"] = $"project-{n % 40}",
                },
            });
            for (var g = 0; g < 8; g++)
            {
                events.Add(new Dictionary<string, object>
                {
                    ["type"] = "gpu_allocated", ["time"] = time, ["workload_id"] = id, ["node_id"] = $"node-{n}", ["gpu_index"] = g, ["share"] = "whole",
                });
            }
        }
        using var content = new StringContent(JsonSerializer.Serialize(events), Encoding.UTF8, "application/json");
        using var response = await http.PostAsync("api/v1/events", content);
        var body = await response.Content.ReadAsStringAsync();
        Console.WriteLine($"live events: {events.Count} posted, {(int)response.StatusCode} {body.Trim()}");
        response.EnsureSuccessStatusCode();

        // Wait until the live fleet burns (the events are applied by the pipeline).
        for (var i = 0; i < 100; i++)
        {
            using var doc = JsonDocument.Parse(await http.GetStringAsync("api/v1/burn"));
            if (doc.RootElement.GetProperty("workloads").GetArrayLength() > 0)
                return;
            await Task.Delay(100);
        }
        Console.WriteLine("warning: the live workloads did not show in /api/v1/burn within 10 s");
    }

    private sealed record Options
    {
        public string Data { get; init; } = "";
        public int Gpus { get; init; } = 2000;
        public int Days { get; init; } = 90;
        public bool Regenerate { get; init; }
        public int Requests { get; init; } = 300;
        public int Warmup { get; init; } = 30;
        public int Clients { get; init; } = 4;
        public int LiveNodes { get; init; } = 250;
        public int BrowserRuns { get; init; } = 20;
        public string Chromium { get; init; } = "/usr/bin/chromium";
        public string Burnrate { get; init; } = DefaultBurnrate();
        public bool Help { get; init; }

        public static Options Parse(string[] args)
        {
            var o = new Options();
            string? data = null;
            for (var i = 0; i < args.Length; i++)
            {
                string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
                int Number()
                {
                    var name = args[i];
                    return int.TryParse(Value(), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : throw new ArgumentException($"{name} needs a whole number");
                }
                o = args[i] switch
                {
                    "--data" => o with { Data = data = Value() },
                    "--gpus" => o with { Gpus = Number() },
                    "--days" => o with { Days = Number() },
                    "--regenerate" => o with { Regenerate = true },
                    "--requests" => o with { Requests = Number() },
                    "--warmup" => o with { Warmup = Number() },
                    "--clients" => o with { Clients = Number() },
                    "--live-nodes" => o with { LiveNodes = Number() },
                    "--browser-runs" => o with { BrowserRuns = Number() },
                    "--chromium" => o with { Chromium = Value() },
                    "--burnrate" => o with { Burnrate = Value() },
                    "--help" or "-h" => o with { Help = true },
                    _ => throw new ArgumentException($"unknown option '{args[i]}'"),
                };
            }
            if (o.Gpus < 8 || o.Days < 1 || o.Requests < 1 || o.Clients < 1)
                throw new ArgumentException("--gpus must be at least 8, --days, --requests and --clients at least 1");
            if (data is null)
            {
                var root = Environment.GetEnvironmentVariable("BURNRATE_BENCH_DIR") ?? Path.Combine(Path.GetTempPath(), "burnrate-bench");
                o = o with { Data = Path.Combine(root, string.Create(CultureInfo.InvariantCulture, $"api-{o.Gpus}x{o.Days}")) };
            }
            return o;
        }

        private static string DefaultBurnrate()
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Burnrate.slnx")))
                    return Path.Combine(dir.FullName, "src", "Burnrate", "bin", "Release", "net10.0", "burnrate");
            }
            return "burnrate";
        }
    }

    /// <summary><c>burnrate serve --data DIR</c> on a free loopback port; stopped with SIGTERM at the end.</summary>
    private sealed class Server : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _log = new();

        private Server(Process process, Uri baseUri)
        {
            _process = process;
            BaseUri = baseUri;
        }

        public Uri BaseUri { get; }

        public double StartSeconds { get; private set; }

        public int ProcessId => _process.Id;

        public static async Task<Server> StartAsync(string executable, string data)
        {
            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            var port = ((IPEndPoint)listener.LocalEndpoint).Port;
            listener.Stop();
            var start = new ProcessStartInfo(executable) { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var arg in new[] { "serve", "--listen", $"127.0.0.1:{port}", "--data", data })
                start.ArgumentList.Add(arg);
            var started = Stopwatch.GetTimestamp();
            var process = Process.Start(start) ?? throw new InvalidOperationException("could not start " + executable);
            var uri = new Uri($"http://127.0.0.1:{port}/");
            var server = new Server(process, uri);
            process.OutputDataReceived += (_, e) => { lock (server._log) server._log.AppendLine(e.Data); };
            process.ErrorDataReceived += (_, e) => { lock (server._log) server._log.AppendLine(e.Data); };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            using var probe = new HttpClient { BaseAddress = uri, Timeout = TimeSpan.FromSeconds(5) };
            while (Stopwatch.GetElapsedTime(started) < TimeSpan.FromMinutes(3))
            {
                if (process.HasExited)
                    throw new InvalidOperationException($"burnrate serve exited with {process.ExitCode}:{Environment.NewLine}{server._log}");
                try
                {
                    using var response = await probe.GetAsync("healthz");
                    if (response.IsSuccessStatusCode)
                    {
                        server.StartSeconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
                        return server;
                    }
                }
                catch (HttpRequestException)
                {
                }
                catch (TaskCanceledException)
                {
                }
                await Task.Delay(200);
            }
            process.Kill();
            throw new InvalidOperationException("burnrate serve did not answer /healthz within 3 minutes");
        }

        public string Describe()
        {
            var status = $"/proc/{_process.Id}/status";
            var rss = File.Exists(status) ? File.ReadLines(status).FirstOrDefault(l => l.StartsWith("VmHWM", StringComparison.Ordinal)) ?? "" : "";
            return $"peak RSS {rss.Split(':').Last().Trim()}";
        }

        public async ValueTask DisposeAsync()
        {
            if (!_process.HasExited)
            {
                using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)]))
                    await kill.WaitForExitAsync();
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
                try
                {
                    await _process.WaitForExitAsync(timeout.Token);
                }
                catch (OperationCanceledException)
                {
                    _process.Kill();
                }
            }
            _process.Dispose();
        }
    }
}
