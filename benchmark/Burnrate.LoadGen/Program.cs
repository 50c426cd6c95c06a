using System.Diagnostics;
using System.Globalization;
using System.Text;
using Burnrate.Protocols.RemoteWrite;

namespace Burnrate.LoadGen;

/// <summary>
/// The end-to-end ingest benchmark: a remote write load generator that starts <c>burnrate serve</c> and Prometheus
/// (with <c>--web.enable-remote-write-receiver</c>) one after the other on loopback, feeds each the same fleet for the
/// same time, and prints a Markdown table of throughput, acknowledgement latency, CPU and resident memory.
/// Run it with benchmark/ingest.sh; results and how to read them are in docs/performance.md.
/// </summary>
internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        LoadGenOptions options;
        try
        {
            options = LoadGenOptions.Parse(args);
        }
        catch (FormatException e)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}\n\n{LoadGenOptions.Usage}");
            return 2;
        }
        if (options.Help)
        {
            Console.WriteLine(LoadGenOptions.Usage);
            return 0;
        }
        using var cancel = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            cancel.Cancel();
        };
        try
        {
            return await RunAsync(options, cancel.Token);
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            await Console.Error.WriteLineAsync("cancelled");
            return 130;
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException or FileNotFoundException or System.ComponentModel.Win32Exception)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}");
            return 1;
        }
    }

    private static async Task<int> RunAsync(LoadGenOptions options, CancellationToken cancellationToken)
    {
        var build = Stopwatch.StartNew();
        var fleet = Fleet.Build(options.Gpus);
        var plan = LoadPlan.Build(fleet, options.Layout, options.Connections, options.Batch);
        SelfCheck(fleet, plan);
        await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"fleet: {fleet.Gpus:N0} GPUs on {fleet.Nodes:N0} nodes, {fleet.Pods:N0} pods; {plan.SamplesPerRound:N0} series = samples a round in {plan.Requests:N0} requests ({plan.RawBytesPerRound / 1e6:0.0} MB of protobuf before Snappy) over {options.Connections} connections, layout {options.Layout.ToString().ToLowerInvariant()}; built and checked in {build.Elapsed.TotalSeconds:0.0} s"));

        var results = new List<RunResult>();
        for (var run = 1; run <= options.Runs; run++)
        {
            foreach (var target in options.Targets)
            {
                cancellationToken.ThrowIfCancellationRequested();
                results.Add(await RunOnceAsync(options, fleet, plan, target, run, cancellationToken));
            }
        }
        Console.WriteLine(Report.Markdown(options, fleet, plan, results));
        return results.Any(r => r.Load.Errors > 0 || r.Load.Samples == 0) ? 1 : 0;
    }

    private static async Task<RunResult> RunOnceAsync(LoadGenOptions options, Fleet fleet, LoadPlan plan, string target, int run, CancellationToken cancellationToken)
    {
        var label = $"[{target} {run}/{options.Runs}]";
        await Console.Error.WriteLineAsync($"{label} starting");
        await using var server = target switch
        {
            "burnrate" => await ServerUnderTest.StartBurnrateAsync(options.BurnratePath, options.Keep, cancellationToken),
            "prometheus" => await ServerUnderTest.StartPrometheusAsync(options.PrometheusPath, options.Keep, cancellationToken),
            _ => await ServerUnderTest.ExternalAsync(new Uri(target), cancellationToken),
        };
        if (server.LogPath is { } log && options.Keep)
            await Console.Error.WriteLineAsync($"{label} {server.Name} (pid {server.ProcessId}) at {server.BaseUri}, output in {log}");

        var idleMemory = server.Memory();
        var loadAverage = File.Exists("/proc/loadavg") ? (await File.ReadAllTextAsync("/proc/loadavg", cancellationToken)).Split(' ')[0] : "?";
        var me = Process.GetCurrentProcess();
        long? processedStart = null, processedEnd = null;
        TimeSpan? cpuStart = null, cpuEnd = null;
        TimeSpan clientCpuStart = default, clientCpuEnd = default;
        var progress = new Progress(label);
        var runner = new LoadRunner(fleet, plan, server);
        var loadStart = DateTimeOffset.UtcNow;
        var load = await runner.RunAsync(options.Warmup, options.Duration,
            async () =>
            {
                processedStart = await server.SamplesProcessedAsync(cancellationToken);
                cpuStart = server.CpuTime();
                me.Refresh();
                clientCpuStart = me.TotalProcessorTime;
            },
            async () =>
            {
                cpuEnd = server.CpuTime();
                me.Refresh();
                clientCpuEnd = me.TotalProcessorTime;
                processedEnd = await server.SamplesProcessedAsync(cancellationToken);
            },
            progress.Report, cancellationToken);
        progress.Done();
        var loadEnd = DateTimeOffset.UtcNow;

        var seconds = load.Window.TotalSeconds;
        var queued = await server.QueuedAsync(cancellationToken);
        TimeSpan? drain = null;
        if (queued is > 0)
        {
            // Burnrate acknowledges once a request is in its write-ahead log and queue; mapping and rating follow.
            var wait = Stopwatch.StartNew();
            while (await server.QueuedAsync(cancellationToken) is > 0 && wait.Elapsed < TimeSpan.FromMinutes(2))
                await Task.Delay(100, cancellationToken);
            drain = wait.Elapsed;
        }
        var result = new RunResult(
            server.Name,
            run,
            load,
            processedStart is { } a && processedEnd is { } b ? (b - a) / seconds : null,
            cpuStart is { } c0 && cpuEnd is { } c1 ? (c1 - c0).TotalSeconds / seconds : null,
            (clientCpuEnd - clientCpuStart).TotalSeconds / seconds,
            queued,
            drain,
            idleMemory?.Rss,
            server.Memory(),
            await server.HeadSeriesAsync(cancellationToken),
            await server.MapperUsedShareAsync(cancellationToken),
            server.IsBurnrate ? await LedgerCheckAsync(server, loadStart, loadEnd, label, cancellationToken) : null,
            loadAverage);
        await Console.Error.WriteLineAsync($"{label} {Report.Summary(result)}");
        if (load.FirstError is { } error)
            await Console.Error.WriteLineAsync($"{label} first error: {error}");
        await server.DisposeAsync();
        if (server.StoppedByKill)
            await Console.Error.WriteLineAsync($"{label} {server.Name} did not stop within 10 s of SIGTERM and was killed");
        return result;
    }

    /// <summary>
    /// The first whole minute under load, as rated into Burnrate's ledger: the proof that the samples became money.
    /// Waits for the minute to close and for the rating tick (minute end + 30 s grace + up to 5 s); null when the load
    /// covered no whole minute (a window shorter than two minutes may not).
    /// </summary>
    private static async Task<LedgerMinute?> LedgerCheckAsync(ServerUnderTest server, DateTimeOffset loadStart, DateTimeOffset loadEnd, string label, CancellationToken cancellationToken)
    {
        var minute = new DateTimeOffset(loadStart.Ticks - loadStart.Ticks % TimeSpan.TicksPerMinute, TimeSpan.Zero);
        if (minute < loadStart)
            minute = minute.AddMinutes(1);
        if (minute.AddMinutes(1) > loadEnd)
        {
            await Console.Error.WriteLineAsync($"{label} ledger not checked: the load covered no whole minute (use a longer --warmup/--duration)");
            return null;
        }
        var deadline = minute.AddMinutes(1) + TimeSpan.FromSeconds(50);
        while (true)
        {
            if (await server.LedgerMinuteAsync(minute, cancellationToken) is { } rated)
                return rated;
            if (DateTimeOffset.UtcNow > deadline)
            {
                await Console.Error.WriteLineAsync($"{label} the minute {minute:HH:mm} was not in the ledger 50 s after it closed");
                return null;
            }
            await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
        }
    }

    /// <summary>The first request decodes, through Burnrate's own decoder, to exactly the fleet's series and values.</summary>
    private static void SelfCheck(Fleet fleet, LoadPlan plan)
    {
        var batch = plan.PerConnection[0][0];
        var body = new byte[batch.MaxCompressedBytes];
        const long Timestamp = 1_800_000_000_000;
        var length = batch.Render(fleet, 7, Timestamp, body);
        var decoded = RemoteWriteDecoder.Decode(body.AsSpan(0, length), RemoteWriteEncoder.ContentType).Samples;
        if (decoded.Count != batch.Samples)
            throw new InvalidOperationException($"self-check: {decoded.Count} samples decoded, {batch.Samples} sent");
        var bySeries = fleet.Series.Select((s, i) => (s, i)).ToDictionary(x => string.Join(',', x.s.Labels), x => x.i);
        foreach (var sample in decoded)
        {
            if (!bySeries.TryGetValue(string.Join(',', sample.Labels), out var index))
                throw new InvalidOperationException($"self-check: decoded a series the fleet does not have: {string.Join(',', sample.Labels)}");
            var expected = fleet.Series[index].ValueAt(index, 7);
            if (sample.TimestampMs != Timestamp || !sample.Value.Equals(expected))
                throw new InvalidOperationException($"self-check: series {index} decoded as {sample.Value}@{sample.TimestampMs}, sent {expected}@{Timestamp}");
        }
    }

    /// <summary>One progress line on stderr: rewritten in place on a terminal, every fifth second otherwise.</summary>
    private sealed class Progress(string label)
    {
        private readonly bool _terminal = !Console.IsErrorRedirected;
        private int _calls;

        public void Report(string text)
        {
            if (_terminal)
                Console.Error.Write($"\r{label} {text}".PadRight(120));
            else if (_calls++ % 5 == 4)
                Console.Error.WriteLine($"{label} {text}");
        }

        public void Done()
        {
            if (_terminal)
                Console.Error.WriteLine();
        }
    }
}

/// <summary>One run against one server: the client's view, the server's own counters, CPU and memory.</summary>
internal sealed record RunResult(
    string Target,
    int Run,
    LoadResult Load,
    double? ServerSamplesPerSecond,
    double? ServerCores,
    double ClientCores,
    long? QueuedAtEnd,
    TimeSpan? Drain,
    long? IdleRss,
    (long Rss, long Peak)? Memory,
    long? HeadSeries,
    double? MapperUsedShare,
    LedgerMinute? Ledger,
    string LoadAverage)
{
    public double AckedPerSecond => Load.Samples / Load.Window.TotalSeconds;
}

/// <summary>The command line.</summary>
internal sealed record LoadGenOptions
{
    public const string Usage = """
        burnrate-loadgen: end-to-end remote write ingest benchmark, Burnrate side by side with Prometheus

        Usage: burnrate-loadgen [options]      (benchmark/ingest.sh builds Release and runs this)

        Generates a GPU fleet (kube-state-metrics node and pod series, dcgm-exporter series per GPU), starts each
        target on a free loopback port with a fresh temporary data directory, sends it remote write 1.0 requests for
        the warm-up and then the measured window, reads its CPU time and resident memory, and stops it. Targets run one
        after the other, never together. Prints a Markdown table on stdout; progress goes to stderr.

        Options:
          --gpus N            GPUs in the fleet, 8 per node (default 10000)
          --duration TIME     measured window per target and run, e.g. 30s, 2m (default 30s)
          --warmup TIME       unmeasured sending before the window; creates every series (default 10s)
          --connections N     concurrent connections, each sending its own requests in order (default 4)
          --batch N           samples per request, like Prometheus' max_samples_per_send (default 2000)
          --runs N            repeat the whole comparison N times with fresh servers; the table gives medians (default 1)
          --targets LIST      burnrate, prometheus, or an http:// URL of a running receiver (default burnrate,prometheus)
          --layout KIND       node: whole nodes per request; sharded: by series hash, as Prometheus shards (default node)
          --burnrate PATH     the burnrate executable (default: the Release build, src/Burnrate/bin/Release/net10.0/burnrate)
          --prometheus PATH   the prometheus executable (default /usr/bin/prometheus)
          --keep              keep the servers' temporary directories (data and output) and print where they are
          -h, --help          show this help
        """;

    public bool Help { get; init; }
    public int Gpus { get; init; } = 10_000;
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(30);
    public TimeSpan Warmup { get; init; } = TimeSpan.FromSeconds(10);
    public int Connections { get; init; } = 4;
    public int Batch { get; init; } = 2000;
    public int Runs { get; init; } = 1;
    public IReadOnlyList<string> Targets { get; init; } = ["burnrate", "prometheus"];
    public Layout Layout { get; init; } = Layout.Node;
    public string BurnratePath { get; init; } = DefaultBurnrate();
    public string PrometheusPath { get; init; } = "/usr/bin/prometheus";
    public bool Keep { get; init; }

    /// <summary>The command line as given, for the report.</summary>
    public string CommandLine { get; init; } = "";

    public static LoadGenOptions Parse(string[] args)
    {
        var options = new LoadGenOptions { CommandLine = string.Join(' ', args) };
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            string Value() => i + 1 < args.Length ? args[++i] : throw new FormatException($"{arg} needs a value");
            options = arg switch
            {
                "-h" or "--help" => options with { Help = true },
                "--gpus" => options with { Gpus = Positive(arg, Value(), Fleet.GpusPerNode) },
                "--duration" => options with { Duration = Time(arg, Value()) },
                "--warmup" => options with { Warmup = Time(arg, Value(), allowZero: true) },
                "--connections" => options with { Connections = Positive(arg, Value(), 1) },
                "--batch" => options with { Batch = Positive(arg, Value(), 1) },
                "--runs" => options with { Runs = Positive(arg, Value(), 1) },
                "--targets" => options with { Targets = ParseTargets(Value()) },
                "--layout" => options with { Layout = Enum.TryParse<Layout>(Value(), ignoreCase: true, out var l) ? l : throw new FormatException("--layout must be node or sharded") },
                "--burnrate" => options with { BurnratePath = Value() },
                "--prometheus" => options with { PrometheusPath = Value() },
                "--keep" => options with { Keep = true },
                _ => throw new FormatException($"unknown option {arg}"),
            };
        }
        return options;
    }

    private static int Positive(string name, string text, int min) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= min
            ? n
            : throw new FormatException($"{name} must be a whole number of at least {min}, got '{text}'");

    /// <summary>A duration: <c>500ms</c>, <c>30s</c>, <c>2m</c>, or plain seconds.</summary>
    private static TimeSpan Time(string name, string text, bool allowZero = false)
    {
        var (number, unit) = text.EndsWith("ms", StringComparison.Ordinal) ? (text[..^2], 0.001)
            : text.EndsWith('s') ? (text[..^1], 1.0)
            : text.EndsWith('m') ? (text[..^1], 60.0)
            : (text, 1.0);
        if (double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && (value > 0 || (allowZero && value == 0)))
            return TimeSpan.FromSeconds(value * unit);
        throw new FormatException($"{name} must be a duration such as 30s or 2m, got '{text}'");
    }

    private static string[] ParseTargets(string text)
    {
        var targets = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var t in targets)
        {
            if (t is not ("burnrate" or "prometheus") && !(Uri.TryCreate(t, UriKind.Absolute, out var uri) && uri.Scheme == Uri.UriSchemeHttp && uri.IsLoopback))
                throw new FormatException($"--targets takes burnrate, prometheus or an http:// loopback URL, got '{t}'");
        }
        return targets.Length > 0 ? targets : throw new FormatException("--targets is empty");
    }

    /// <summary>src/Burnrate/bin/Release/net10.0/burnrate of the checkout this program was built in.</summary>
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

/// <summary>The Markdown the benchmark prints.</summary>
internal static class Report
{
    public static string Summary(RunResult r)
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"{r.AckedPerSecond:N0} samples/s acknowledged");
        if (r.ServerSamplesPerSecond is { } s)
            text.Append(CultureInfo.InvariantCulture, $", {s:N0}/s {(r.Target == "burnrate" ? "mapped" : "appended")}");
        text.Append(CultureInfo.InvariantCulture, $"; ack p50 {LoadRunner.Format(r.Load.P50Ms, "0.0")} ms, p99 {LoadRunner.Format(r.Load.P99Ms, "0.0")} ms; 503s {r.Load.Busy}, errors {r.Load.Errors}");
        if (r.ServerCores is { } cores)
            text.Append(CultureInfo.InvariantCulture, $"; server {cores:0.00} cores, client {r.ClientCores:0.00}");
        if (r.Memory is { } m)
            text.Append(CultureInfo.InvariantCulture, $"; RSS {m.Rss / 1048576.0:N0} MiB (peak {m.Peak / 1048576.0:N0}, {r.IdleRss / 1048576.0:N0} before the load)");
        if (r.Drain is { } d)
            text.Append(CultureInfo.InvariantCulture, $"; queue {r.QueuedAtEnd:N0} drained in {d.TotalSeconds:0.0} s");
        if (r.HeadSeries is { } series)
            text.Append(CultureInfo.InvariantCulture, $"; {series:N0} head series");
        if (r.MapperUsedShare is { } used)
            text.Append(CultureInfo.InvariantCulture, $"; mapper used {used:P0}");
        if (r.Ledger is { } ledger)
            text.Append(CultureInfo.InvariantCulture, $"; ledger {ledger.Minute:HH:mm} ${ledger.CostUsd:N2} ({ledger.GpuHours:N1} GPU-h, idle ${ledger.IdleUsd:N2})");
        return text.ToString();
    }

    public static string Markdown(LoadGenOptions options, Fleet fleet, LoadPlan plan, List<RunResult> results)
    {
        var md = new StringBuilder();
        md.AppendLine(CultureInfo.InvariantCulture, $"Load: {fleet.Gpus:N0} GPUs on {fleet.Nodes:N0} nodes, {fleet.Pods:N0} pods, {plan.SamplesPerRound:N0} series; remote write 1.0, {plan.Requests} requests a round of up to {options.Batch:N0} samples over {options.Connections} connections (layout {options.Layout.ToString().ToLowerInvariant()}); {options.Warmup.TotalSeconds:0} s warm-up, {options.Duration.TotalSeconds:0} s measured, {options.Runs} run(s).");
        md.AppendLine();
        md.AppendLine("| target | run | load avg | acked samples/s | server samples/s | ack p50 ms | ack p99 ms | 2xx attempt p99 ms | 503s | errors | rounds | server cores | client cores | RSS before load MiB | RSS MiB | peak RSS MiB | after the window |");
        md.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        foreach (var r in results)
        {
            md.AppendLine(CultureInfo.InvariantCulture,
                $"| {r.Target} | {r.Run} | {r.LoadAverage} | {r.AckedPerSecond:N0} | {Opt(r.ServerSamplesPerSecond, "N0")} | {LoadRunner.Format(r.Load.P50Ms, "0.0")} | {LoadRunner.Format(r.Load.P99Ms, "0.0")} | {LoadRunner.Format(r.Load.P99AttemptMs, "0.0")} | {r.Load.Busy} | {r.Load.Errors} | {r.Load.MinRounds} | {Opt(r.ServerCores, "0.00")} | {r.ClientCores:0.00} | {Opt(r.IdleRss / 1048576.0, "N0")} | {Opt(r.Memory?.Rss / 1048576.0, "N0")} | {Opt(r.Memory?.Peak / 1048576.0, "N0")} | {After(r)} |");
        }
        var targets = results.Select(r => r.Target).Distinct().ToList();
        if (options.Runs > 1 || targets.Count > 1)
        {
            md.AppendLine();
            md.AppendLine(CultureInfo.InvariantCulture, $"Median of {options.Runs} run(s):");
            md.AppendLine();
            md.AppendLine("| target | acked samples/s | server samples/s | ack p50 ms | ack p99 ms | server cores | acked samples per server CPU-second | RSS before load MiB | RSS MiB |");
            md.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
            foreach (var t in targets)
            {
                var rs = results.Where(r => r.Target == t).ToList();
                md.AppendLine(CultureInfo.InvariantCulture,
                    $"| {t} | {Median(rs.Select(r => r.AckedPerSecond)):N0} | {Opt(Median(rs.Select(r => r.ServerSamplesPerSecond)), "N0")} | {Median(rs.Select(r => r.Load.P50Ms)):0.0} | {Median(rs.Select(r => r.Load.P99Ms)):0.0} | {Opt(Median(rs.Select(r => r.ServerCores)), "0.00")} | {Opt(Median(rs.Select(r => r.ServerCores is > 0 ? r.AckedPerSecond / r.ServerCores : null)), "N0")} | {Opt(Median(rs.Select(r => r.IdleRss / 1048576.0)), "N0")} | {Opt(Median(rs.Select(r => r.Memory?.Rss / 1048576.0)), "N0")} |");
            }
            if (targets.Contains("burnrate") && targets.Contains("prometheus"))
            {
                var ratio = Median(results.Where(r => r.Target == "burnrate").Select(r => r.AckedPerSecond))
                    / Median(results.Where(r => r.Target == "prometheus").Select(r => r.AckedPerSecond));
                md.AppendLine();
                md.AppendLine(CultureInfo.InvariantCulture, $"Burnrate / Prometheus, acknowledged samples/s (medians): **{ratio:0.00}×**");
            }
        }
        return md.ToString();
    }

    private static string After(RunResult r)
    {
        var parts = new List<string>();
        if (r.HeadSeries is { } series)
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"{series:N0} head series"));
        if (r.Drain is { } d)
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"queue {r.QueuedAtEnd:N0} drained in {d.TotalSeconds:0.0} s"));
        if (r.MapperUsedShare is { } used)
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"mapper used {used:P0} of samples"));
        if (r.Ledger is { } ledger)
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"ledger {ledger.Minute:HH:mm}: ${ledger.CostUsd:N2}, {ledger.GpuHours:N1} GPU-h, idle ${ledger.IdleUsd:N2}"));
        return string.Join("; ", parts);
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Where(v => !double.IsNaN(v)).Order().ToArray();
        return sorted.Length == 0 ? double.NaN : sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    private static double? Median(IEnumerable<double?> values)
    {
        var present = values.Where(v => v.HasValue).Select(v => v!.Value).ToArray();
        return present.Length == 0 ? null : Median(present);
    }

    private static string Opt(double? value, string format) => value is { } v ? v.ToString(format, CultureInfo.InvariantCulture) : "–";
}
