using Microsoft.Extensions.Logging;

namespace Burnrate.Pricing.Internal;

/// <summary>The pricing area's log messages, source-generated so a disabled level costs nothing.</summary>
internal static partial class PricingLog
{
    [LoggerMessage(EventId = 3001, Level = LogLevel.Information, Message = "Built-in price catalog loaded: {Prices} prices from {Files} files")]
    public static partial void BuiltInCatalogLoaded(ILogger logger, int prices, int files);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Information,
        Message = "SkyPilot catalog {File} ({Provider}): {Rows} rows, {Prices} prices, {Issues} issues handled ({Summary})")]
    public static partial void SkyPilotLoaded(ILogger logger, string file, string provider, int rows, int prices, int issues, string summary);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Debug, Message = "SkyPilot catalog {File}:{Line}: {Kind}: {Message}")]
    public static partial void SkyPilotIssue(ILogger logger, string file, int line, CatalogIssueKind kind, string message);
}
