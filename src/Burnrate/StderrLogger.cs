using Microsoft.Extensions.Logging;

namespace Burnrate.Cli;

/// <summary>
/// The CLI's log: notes at or above a level go to stderr as <c>note: …</c> lines (warnings as <c>warning: …</c>),
/// so that what the loaders did (a SkyPilot catalog's skipped rows, capped spot prices) is visible without a logging
/// stack. Library code logs through <see cref="ILogger"/> as usual.
/// </summary>
internal sealed class StderrLogger(TextWriter error, LogLevel minimum = LogLevel.Information) : ILogger
{
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= minimum && logLevel != LogLevel.None;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (!IsEnabled(logLevel))
            return;
        var prefix = logLevel >= LogLevel.Warning ? "warning: " : "note: ";
        error.WriteLine(prefix + formatter(state, exception));
    }
}
