using System.Diagnostics;

namespace Burnrate.Tests.Support;

/// <summary>
/// A real single-node Slurm (Debian's munge, MariaDB, slurmdbd, slurmctld, slurmd; two fake GPUs as GRES), started
/// fresh by <c>test/setup/slurm/start.sh</c> for the tests that use it and stopped by <c>stop.sh</c> afterwards. Where
/// Slurm is not installed or the tests do not run as root, <see cref="Require"/> skips locally and fails under
/// <c>CI=true</c> (test.sh installs the packages).
/// </summary>
public sealed class SlurmCluster : IAsyncLifetime
{
    private string? _unavailable;
    private string? _broken;
    private string? _scripts;

    /// <summary>The cluster's name in slurm.conf.</summary>
    public const string Name = "burnrate-test";

    /// <summary>What start.sh printed.</summary>
    public string SetupLog { get; private set; } = "";

    public async ValueTask InitializeAsync()
    {
        if (!File.Exists("/usr/sbin/slurmctld") || !File.Exists("/usr/sbin/slurmdbd") || !File.Exists("/usr/sbin/mariadbd"))
        {
            _unavailable = "Slurm is not installed (Debian packages slurm-wlm, slurmdbd, mariadb-server, munge; ./test.sh installs them)";
            return;
        }
        if (Environment.UserName != "root")
        {
            _unavailable = "the Slurm test cluster needs root (its daemons run as root, munge and slurm)";
            return;
        }
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "test", "setup", "slurm", "start.sh")))
            dir = dir.Parent;
        if (dir is null)
        {
            _broken = "test/setup/slurm/start.sh not found above " + AppContext.BaseDirectory;
            return;
        }
        _scripts = Path.Combine(dir.FullName, "test", "setup", "slurm");
        var (exit, stdout, stderr) = await RunAsync("bash", [Path.Combine(_scripts, "start.sh")], new Dictionary<string, string> { ["BURNRATE_SLURM_FRESH"] = "1" }, TimeSpan.FromMinutes(10));
        var output = SetupLog = stdout + stderr;
        if (exit != 0)
            _broken = "test/setup/slurm/start.sh failed:\n" + output;
    }

    /// <summary>Skips (locally) or fails (CI, or a cluster that did not start) unless the cluster is up.</summary>
    public void Require()
    {
        if (_broken is not null)
            Assert.Fail(_broken);
        if (_unavailable is null)
            return;
        if (RealPeer.InCi)
            Assert.Fail(_unavailable + " and CI=true: the Slurm tests must run in CI");
        Assert.Skip(_unavailable);
    }

    public async ValueTask DisposeAsync()
    {
        if (_scripts is not null)
            await RunAsync("bash", [Path.Combine(_scripts, "stop.sh")], null, TimeSpan.FromMinutes(2));
    }

    /// <summary>Runs a Slurm client command with TZ=UTC; its standard output, or an assertion failure with both streams.</summary>
    public static async Task<string> CommandAsync(string file, params string[] arguments)
    {
        var (exit, stdout, stderr) = await RunAsync(file, arguments, null, TimeSpan.FromMinutes(2));
        Assert.True(exit == 0, $"{file} {string.Join(' ', arguments)} exited with {exit}: {stdout}{stderr}");
        return stdout;
    }

    private static async Task<(int Exit, string Stdout, string Stderr)> RunAsync(string file, IEnumerable<string> arguments, IDictionary<string, string>? environment, TimeSpan timeout)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in arguments)
            info.ArgumentList.Add(a);
        info.Environment["TZ"] = "UTC";
        foreach (var (k, v) in environment ?? new Dictionary<string, string>())
            info.Environment[k] = v;
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            return (-1, await stdout, $"timed out after {timeout}: " + await stderr);
        }
        return (process.ExitCode, await stdout, await stderr);
    }
}
