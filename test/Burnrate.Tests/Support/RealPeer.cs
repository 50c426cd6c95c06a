using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Burnrate.Tests.Support;

/// <summary>
/// Real peers (Debian's Prometheus, ...) that integration tests start on loopback. A missing peer skips the test with
/// the reason locally and fails it under <c>CI=true</c>, where test.sh has installed it.
/// </summary>
internal static class RealPeer
{
    public static bool InCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    /// <summary>The path of <paramref name="binary"/>, or skip (locally) / fail (CI) saying which package provides it.</summary>
    public static string Require(string binary, string package)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Append("/usr/bin").Append("/usr/sbin"))
        {
            var path = Path.Combine(dir, binary);
            if (dir.Length > 0 && File.Exists(path))
                return path;
        }
        var reason = $"{binary} is not installed (Debian package '{package}'; ./test.sh installs it)";
        if (InCi)
            Assert.Fail(reason + " and CI=true: real-peer tests must run in CI");
        Assert.Skip(reason);
        return "";
    }

    /// <summary>A loopback port free right now.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Starts <paramref name="file"/> with its output captured into <paramref name="log"/>.</summary>
    public static Process Start(string file, IEnumerable<string> arguments, System.Text.StringBuilder log, IDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in arguments)
            info.ArgumentList.Add(a);
        foreach (var (k, v) in environment ?? new Dictionary<string, string>())
            info.Environment[k] = v;
        var process = new Process { StartInfo = info };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>Kills the process tree if still running and waits for it.</summary>
    public static void Stop(Process? process)
    {
        if (process is null)
            return;
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
        }
        process.Dispose();
    }
}
