using Microsoft.Extensions.Logging;

namespace Burnrate.Pricing.Feeds.Internal;

/// <summary>The price feeds' log messages, source-generated so a disabled level costs nothing.</summary>
internal static partial class PriceFeedLog
{
    [LoggerMessage(EventId = 3101, Level = LogLevel.Information, Message = "price feed {Feed}: {Prices} prices read, {Changes} written to the price book")]
    public static partial void Polled(ILogger logger, string feed, int prices, int changes);

    [LoggerMessage(EventId = 3102, Level = LogLevel.Warning,
        Message = "price feed {Feed}: poll failed ({Failures} in a row), keeping the last good prices, next try in {RetrySeconds} s: {Reason}")]
    public static partial void PollFailed(ILogger logger, string feed, int failures, double retrySeconds, string reason);
}
