using System.Diagnostics;
using System.Text;

namespace Burnrate.Connectors.Slurm;

/// <summary>What one Slurm command printed and how it exited.</summary>
public sealed record SlurmCommandResult(int ExitCode, string Output, string Error);

/// <summary>Runs Slurm's client commands; tests replace it with recorded outputs.</summary>
public interface ISlurmCommands
{
    /// <summary>Runs <paramref name="command"/> (<c>squeue</c>, <c>sacct</c>, <c>scontrol</c>) with <paramref name="arguments"/>.</summary>
    /// <exception cref="SlurmCommandException">It could not be started or ran past its timeout.</exception>
    Task<SlurmCommandResult> RunAsync(string command, IReadOnlyList<string> arguments, CancellationToken cancellationToken);
}

/// <summary>A Slurm command that could not run.</summary>
public sealed class SlurmCommandException : Exception
{
    public SlurmCommandException(string message) : base(message) { }
    public SlurmCommandException(string message, Exception inner) : base(message, inner) { }
    public SlurmCommandException() { }
}

/// <summary>
/// Starts the real commands as processes (no shell: arguments are passed as they are), with <c>TZ=UTC</c> so text
/// times are UTC, and kills one that runs past the timeout.
/// </summary>
public sealed class ProcessSlurmCommands(string binDir, TimeSpan timeout, TimeProvider? time = null) : ISlurmCommands
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    /// <inheritdoc/>
    public async Task<SlurmCommandResult> RunAsync(string command, IReadOnlyList<string> arguments, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        var file = binDir.Length > 0 ? Path.Combine(binDir, command) : command;
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = false,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
        };
        foreach (var a in arguments)
            info.ArgumentList.Add(a);
        info.Environment["TZ"] = "UTC";
        info.Environment["SLURM_TIME_FORMAT"] = "standard";
        using var process = new Process { StartInfo = info };
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new SlurmCommandException($"{file}: cannot start: {e.Message}", e);
        }
        using var deadline = new CancellationTokenSource(timeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        var output = process.StandardOutput.ReadToEndAsync(linked.Token);
        var error = process.StandardError.ReadToEndAsync(linked.Token);
        try
        {
            await process.WaitForExitAsync(linked.Token).ConfigureAwait(false);
            return new SlurmCommandResult(process.ExitCode, await output.ConfigureAwait(false), await error.ConfigureAwait(false));
        }
        catch (OperationCanceledException)
        {
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
            }
            if (cancellationToken.IsCancellationRequested)
                throw;
            throw new SlurmCommandException($"{command} ran past its timeout of {timeout.TotalSeconds:0.#}s and was killed");
        }
    }
}
