using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace Burnrate.LoadGen;

/// <summary>
/// A receiver the load is sent to: <c>burnrate serve</c> or Prometheus with its remote write receiver, started on a free
/// loopback port with a fresh temporary data directory and stopped (and the directory removed) at the end; or an
/// already running server given by URL, which is only measured from the outside.
/// </summary>
internal sealed class ServerUnderTest : IAsyncDisposable
{
    private static readonly TimeSpan s_readyTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan s_stopGrace = TimeSpan.FromSeconds(10);

    private readonly Process? _process;
    private readonly string? _directory;
    private readonly StreamWriter? _log;
    private readonly HttpClient _http;
    private readonly bool _keep;
    private bool _disposed;

    private ServerUnderTest(string name, Uri baseUri, Process? process, string? directory, StreamWriter? log, bool keep)
    {
        Name = name;
        BaseUri = baseUri;
        _process = process;
        _directory = directory;
        _log = log;
        _keep = keep;
        _http = new HttpClient { BaseAddress = baseUri, Timeout = TimeSpan.FromSeconds(30) };
    }

    /// <summary><c>burnrate</c> or <c>prometheus</c> (or the URL's host for an external server).</summary>
    public string Name { get; }

    public Uri BaseUri { get; }

    public Uri WriteUri => new(BaseUri, "api/v1/write");

    public bool IsBurnrate => Name == "burnrate";

    public int? ProcessId => _process?.Id;

    /// <summary>Whether the server ignored SIGTERM for the grace time and had to be killed.</summary>
    public bool StoppedByKill { get; private set; }

    /// <summary>The server's output, when this process started it.</summary>
    public string? LogPath => _directory is null ? null : Path.Combine(_directory, "server.log");

    public static async Task<ServerUnderTest> StartBurnrateAsync(string executable, bool keep, CancellationToken cancellationToken)
    {
        var directory = Directory.CreateTempSubdirectory("burnrate-loadgen-").FullName;
        var port = FreePort();
        var data = Path.Combine(directory, "data");
        var start = new ProcessStartInfo(executable);
        foreach (var arg in new[] { "serve", "--listen", $"127.0.0.1:{port}", "--data", data })
            start.ArgumentList.Add(arg);
        return await StartAsync("burnrate", start, directory, new Uri($"http://127.0.0.1:{port}/"), "healthz", keep, cancellationToken);
    }

    public static async Task<ServerUnderTest> StartPrometheusAsync(string executable, bool keep, CancellationToken cancellationToken)
    {
        var directory = Directory.CreateTempSubdirectory("burnrate-loadgen-").FullName;
        var port = FreePort();
        var config = Path.Combine(directory, "prometheus.yml");
        // No scrape jobs: Prometheus only receives, as Burnrate does.
        await File.WriteAllTextAsync(config, "global: {}\n", cancellationToken);
        var start = new ProcessStartInfo(executable);
        foreach (var arg in new[]
        {
            "--web.enable-remote-write-receiver", $"--storage.tsdb.path={Path.Combine(directory, "tsdb")}",
            $"--web.listen-address=127.0.0.1:{port}", $"--config.file={config}",
        })
            start.ArgumentList.Add(arg);
        return await StartAsync("prometheus", start, directory, new Uri($"http://127.0.0.1:{port}/"), "-/ready", keep, cancellationToken);
    }

    /// <summary>A server that is already running; which one it is comes from its <c>/metrics</c> page.</summary>
    public static async Task<ServerUnderTest> ExternalAsync(Uri baseUri, CancellationToken cancellationToken)
    {
        var probe = new ServerUnderTest(baseUri.Host, baseUri, null, null, null, keep: true);
        var page = await probe.MetricsAsync(cancellationToken) ?? "";
        await probe.DisposeAsync();
        var name = page.Contains("burnrate_ingest_", StringComparison.Ordinal) ? "burnrate"
            : page.Contains("prometheus_tsdb_", StringComparison.Ordinal) ? "prometheus"
            : baseUri.Host;
        return new ServerUnderTest(name, baseUri, null, null, null, keep: true);
    }

    /// <summary>Samples the server says it has taken in so far (its own counter), or null when it has none.</summary>
    public async Task<long?> SamplesProcessedAsync(CancellationToken cancellationToken)
    {
        var page = await MetricsAsync(cancellationToken);
        if (page is null)
            return null;
        return IsBurnrate
            ? (long?)(Sum(page, "burnrate_mapper_samples_used_total") + Sum(page, "burnrate_mapper_samples_ignored_total"))
            : (long?)Sum(page, "prometheus_tsdb_head_samples_appended_total");
    }

    /// <summary>Burnrate's ingest queue depth (samples accepted and not yet mapped), or null.</summary>
    public async Task<long?> QueuedAsync(CancellationToken cancellationToken) =>
        IsBurnrate && await MetricsAsync(cancellationToken) is { } page ? (long)Sum(page, "burnrate_ingest_queue_items") : null;

    /// <summary>Prometheus' live series in its head block, or null.</summary>
    public async Task<long?> HeadSeriesAsync(CancellationToken cancellationToken) =>
        !IsBurnrate && await MetricsAsync(cancellationToken) is { } page ? (long)Sum(page, "prometheus_tsdb_head_series") : null;

    /// <summary>The share of processed samples Burnrate's mapper used (the rest it ignored, by rule), or null.</summary>
    public async Task<double?> MapperUsedShareAsync(CancellationToken cancellationToken)
    {
        if (!IsBurnrate || await MetricsAsync(cancellationToken) is not { } page)
            return null;
        var used = Sum(page, "burnrate_mapper_samples_used_total");
        var all = used + Sum(page, "burnrate_mapper_samples_ignored_total");
        return all > 0 ? used / all : null;
    }

    /// <summary>
    /// What Burnrate's ledger holds for the minute starting at <paramref name="minute"/> (<c>GET /api/v1/costs</c>), or
    /// null when the minute is not rated (yet).
    /// </summary>
    public async Task<LedgerMinute?> LedgerMinuteAsync(DateTimeOffset minute, CancellationToken cancellationToken)
    {
        if (!IsBurnrate)
            return null;
        var query = string.Create(CultureInfo.InvariantCulture, $"api/v1/costs?by=cloud&from={minute.UtcDateTime:yyyy-MM-ddTHH:mm:ssZ}&to={minute.AddMinutes(1).UtcDateTime:yyyy-MM-ddTHH:mm:ssZ}");
        try
        {
            using var json = JsonDocument.Parse(await _http.GetStringAsync(new Uri(query, UriKind.Relative), cancellationToken));
            decimal cost = 0, idle = 0, gpuHours = 0;
            var rows = 0;
            foreach (var row in json.RootElement.GetProperty("rows").EnumerateArray())
            {
                rows++;
                cost += Money(row.GetProperty("cost_usd"));
                idle += Money(row.GetProperty("idle_usd"));
                gpuHours += row.TryGetProperty("gpu_hours", out var h) ? h.GetDecimal() : row.GetProperty("gpu_seconds").GetDecimal() / 3600m;
            }
            return rows == 0 || cost == 0 ? null : new LedgerMinute(minute, cost, idle, gpuHours);
        }
        catch (HttpRequestException)
        {
            return null;
        }

        static decimal Money(JsonElement e) =>
            e.ValueKind == JsonValueKind.String ? decimal.Parse(e.GetString()!, CultureInfo.InvariantCulture) : e.GetDecimal();
    }

    /// <summary>VmRSS and VmHWM (peak) of the server process in bytes, from /proc; null for an external server.</summary>
    public (long Rss, long Peak)? Memory()
    {
        if (_process is null || _process.HasExited)
            return null;
        long rss = 0, peak = 0;
        foreach (var line in File.ReadLines($"/proc/{_process.Id}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                rss = Kilobytes(line);
            else if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                peak = Kilobytes(line);
        }
        return (rss, peak);

        static long Kilobytes(string line) =>
            1024 * long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
    }

    /// <summary>User plus system CPU time the server process has used, from /proc; null for an external server.</summary>
    public TimeSpan? CpuTime() => _process is null || _process.HasExited ? null : ProcessCpu.Of(_process.Id);

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
            return;
        _disposed = true;
        if (_process is not null)
        {
            if (!_process.HasExited)
            {
                // SIGTERM first; a server still running after the grace time is killed (both keep a write-ahead log,
                // so nothing acknowledged is lost either way, and the directory is removed next).
                using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)]))
                    await kill.WaitForExitAsync();
                using var wait = new CancellationTokenSource(s_stopGrace);
                try
                {
                    await _process.WaitForExitAsync(wait.Token);
                }
                catch (OperationCanceledException)
                {
                    StoppedByKill = true;
                    _process.Kill(entireProcessTree: true);
                    await _process.WaitForExitAsync();
                }
            }
            _process.Dispose();
        }
        if (_log is not null)
            await _log.DisposeAsync();
        _http.Dispose();
        if (_directory is not null && !_keep)
        {
            try
            {
                Directory.Delete(_directory, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static async Task<ServerUnderTest> StartAsync(string name, ProcessStartInfo start, string directory, Uri baseUri, string readyPath, bool keep, CancellationToken cancellationToken)
    {
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.UseShellExecute = false;
        var log = new StreamWriter(Path.Combine(directory, "server.log")) { AutoFlush = true };
        var process = new Process { StartInfo = start };
        var sync = new Lock();
        process.OutputDataReceived += (_, e) => Write(e.Data);
        process.ErrorDataReceived += (_, e) => Write(e.Data);
        if (!process.Start())
            throw new InvalidOperationException($"could not start {start.FileName}");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new ServerUnderTest(name, baseUri, process, directory, log, keep);
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            if (process.HasExited)
            {
                await server.DisposeAsync();
                throw new InvalidOperationException($"{name} exited with code {process.ExitCode} before it was ready; see its output above");
            }
            try
            {
                using var response = await server._http.GetAsync(new Uri(readyPath, UriKind.Relative), cancellationToken);
                if (response.IsSuccessStatusCode)
                    return server;
            }
            catch (HttpRequestException)
            {
            }
            if (deadline.Elapsed > s_readyTimeout)
            {
                await server.DisposeAsync();
                throw new TimeoutException($"{name} was not ready after {s_readyTimeout.TotalSeconds:0} s");
            }
            await Task.Delay(100, cancellationToken);
        }

        void Write(string? line)
        {
            if (line is null)
                return;
            lock (sync)
                log.WriteLine(line);
        }
    }

    private async Task<string?> MetricsAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await _http.GetStringAsync(new Uri("metrics", UriKind.Relative), cancellationToken);
        }
        catch (HttpRequestException)
        {
            return null;
        }
    }

    /// <summary>The sum of every sample of the family <paramref name="name"/> on an exposition page.</summary>
    private static double Sum(string page, string name)
    {
        double sum = 0;
        foreach (var line in page.AsSpan().EnumerateLines())
        {
            if (!line.StartsWith(name, StringComparison.Ordinal) || line.Length == name.Length || line[name.Length] is not (' ' or '{'))
                continue;
            var space = line.LastIndexOf(' ');
            if (double.TryParse(line[(space + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
                sum += value;
        }
        return sum;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>One rated minute of Burnrate's ledger: all clouds together.</summary>
internal sealed record LedgerMinute(DateTimeOffset Minute, decimal CostUsd, decimal IdleUsd, decimal GpuHours);

/// <summary>CPU time of a process from <c>/proc/PID/stat</c> (utime + stime, all threads).</summary>
internal static class ProcessCpu
{
    /// <summary>Clock ticks per second of /proc times: 100 on every Linux x86-64 and arm64 build.</summary>
    private const double TicksPerSecond = 100;

    public static TimeSpan? Of(int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (IOException)
        {
            return null;
        }
        // The command name (field 2) may hold spaces; the fields after its closing parenthesis are fixed.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        return TimeSpan.FromSeconds(ticks / TicksPerSecond);
    }
}
