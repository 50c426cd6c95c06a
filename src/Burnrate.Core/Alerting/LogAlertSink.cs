using Microsoft.Extensions.Logging;

namespace Burnrate.Alerting;

/// <summary>Writes each notification as a log line: the sink used when no delivery target is configured.</summary>
public sealed partial class LogAlertSink(ILogger logger) : IAlertSink
{
    public void Publish(IReadOnlyList<AlertNotification> notifications)
    {
        if (!logger.IsEnabled(LogLevel.Warning))
            return;
        foreach (var n in notifications)
            LogAlert(logger, AlertLineSink.Format(n));
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "alert: {Line}")]
    private static partial void LogAlert(ILogger logger, string line);
}
