namespace Burnrate.Cli;

/// <summary>A mistake in the command line (unknown dimension, bad time): reported with exit code 2.</summary>
public sealed class CliUsageException : Exception
{
    public CliUsageException()
    {
    }

    public CliUsageException(string message)
        : base(message)
    {
    }

    public CliUsageException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>The exit codes of <c>burnrate</c>.</summary>
public static class ExitCodes
{
    /// <summary>Success.</summary>
    public const int Ok = 0;

    /// <summary>A runtime failure: no ledger, server unreachable, store error.</summary>
    public const int Failure = 1;

    /// <summary>A usage error: unknown verb or option, bad value.</summary>
    public const int Usage = 2;

    /// <summary>Interrupted (Ctrl+C).</summary>
    public const int Interrupted = 130;
}
