using System.ComponentModel;
using System.Diagnostics;

namespace Burnrate.Agent;

/// <summary>Runs the agent's nvidia-smi query (<see cref="NvidiaSmiCsv.Arguments"/>) and returns what it printed.</summary>
public static class NvidiaSmi
{
    /// <summary>The executable looked up on <c>PATH</c> when no path is given.</summary>
    public const string DefaultPath = "nvidia-smi";

    /// <summary>
    /// Runs <paramref name="path"/> with the query and returns its standard output. Throws <see cref="NvidiaSmiException"/>
    /// when it cannot be started, exits non-zero (nvidia-smi prints why on stdout, e.g. "NVIDIA-SMI has failed because
    /// it couldn't communicate with the NVIDIA driver"), or does not finish within <paramref name="timeout"/> on
    /// <paramref name="time"/> (it is killed then).
    /// </summary>
    public static async Task<string> QueryAsync(string path, TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(time);
        var start = new ProcessStartInfo(path)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in NvidiaSmiCsv.Arguments)
            start.ArgumentList.Add(argument);
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new NvidiaSmiException($"cannot run nvidia-smi at '{path}'");
        }
        catch (Win32Exception e)
        {
            throw new NvidiaSmiException(
                $"cannot run nvidia-smi at '{path}': {e.Message}; install the NVIDIA driver (it ships nvidia-smi) or pass --nvidia-smi PATH", e);
        }
        using (process)
        {
            using var deadline = new CancellationTokenSource(timeout, time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
            var stdout = process.StandardOutput.ReadToEndAsync(linked.Token);
            var stderr = process.StandardError.ReadToEndAsync(linked.Token);
            try
            {
                await process.WaitForExitAsync(linked.Token).ConfigureAwait(false);
                await Task.WhenAll(stdout, stderr).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                Kill(process);
                cancellationToken.ThrowIfCancellationRequested();
                throw new NvidiaSmiException($"nvidia-smi at '{path}' did not finish within {timeout.TotalSeconds:0.#} s and was stopped");
            }
            if (process.ExitCode != 0)
            {
                var said = FirstLine(await stdout.ConfigureAwait(false)) ?? FirstLine(await stderr.ConfigureAwait(false)) ?? "no output";
                throw new NvidiaSmiException($"nvidia-smi at '{path}' failed (exit code {process.ExitCode}): {said}");
            }
            return await stdout.ConfigureAwait(false);
        }
    }

    private static void Kill(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // It exited meanwhile.
        }
    }

    private static string? FirstLine(string text)
    {
        foreach (var line in text.Split('\n'))
        {
            if (!string.IsNullOrWhiteSpace(line))
                return line.Trim();
        }
        return null;
    }
}

/// <summary>nvidia-smi is missing, failed, hung, or printed nothing the agent could read; the message says which.</summary>
public sealed class NvidiaSmiException : Exception
{
    public NvidiaSmiException()
    {
    }

    public NvidiaSmiException(string message)
        : base(message)
    {
    }

    public NvidiaSmiException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
