using System.Globalization;
using System.Text;
using Burnrate.Configuration;
using Burnrate.Pricing.Feeds;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Burnrate.Server;

/// <summary>
/// <c>GET /api/v1/prices/feeds</c> and the <c>burnrate_price_feed_*</c> series of <c>/metrics</c>: where each live price
/// feed stands (last success, last error, prices held, failures in a row). Reads the <see cref="PriceFeeds"/> in DI; a
/// server without feeds answers an empty list and writes no series.
/// </summary>
public static class PriceFeedEndpoints
{
    /// <summary>Maps <c>GET /api/v1/prices/feeds</c>.</summary>
    public static IEndpointRouteBuilder MapPriceFeedApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/v1/prices/feeds", (HttpContext context) =>
        {
            if (ApiJson.RefuseUnknownParameters(context.Request.Query, "Invalid price feeds query") is { } unknown)
                return unknown;
            var feeds = context.RequestServices.GetService<PriceFeeds>()?.Status ?? [];
            return ApiJson.Document(json =>
            {
                json.WriteStartObject();
                json.WriteStartArray("feeds");
                foreach (var f in feeds)
                {
                    json.WriteStartObject();
                    json.WriteString("name", f.Name);
                    json.WriteString("kind", f.Kind.ToName());
                    json.WriteBoolean("up", f.Up);
                    json.WriteNumber("interval_seconds", (long)f.Interval.TotalSeconds);
                    ApiJson.WriteTimeOrNull(json, "last_attempt_at", f.LastAttemptAt);
                    ApiJson.WriteTimeOrNull(json, "last_success_at", f.LastSuccessAt);
                    if (f.LastError is null)
                        json.WriteNull("last_error");
                    else
                        json.WriteString("last_error", f.LastError);
                    ApiJson.WriteTimeOrNull(json, "last_error_at", f.LastErrorAt);
                    json.WriteNumber("consecutive_failures", f.ConsecutiveFailures);
                    json.WriteNumber("polls", f.Polls);
                    json.WriteNumber("errors", f.Errors);
                    json.WriteNumber("prices_held", f.PricesHeld);
                    json.WriteNumber("savings_plan_prices", f.SavingsPlanPrices);
                    json.WriteNumber("book_changes", f.BookChanges);
                    ApiJson.WriteTimeOrNull(json, "next_poll_at", f.NextPollAt == DateTimeOffset.MinValue ? null : f.NextPollAt);
                    json.WriteEndObject();
                }
                json.WriteEndArray();
                json.WriteEndObject();
            });
        }).RequireScope(ApiScopes.Read);
        return app;
    }

    /// <summary>The <c>burnrate_price_feed_*</c> series, one per feed (labels <c>feed</c> and <c>kind</c>); empty without feeds. docs/metrics.md.</summary>
    public static string Render(PriceFeeds? feeds)
    {
        if (feeds is null || feeds.Feeds.Count == 0)
            return "";
        var status = feeds.Status;
        var page = new StringBuilder();
        static string Labels(PriceFeedStatus f) => $"feed=\"{Escape(f.Name)}\",kind=\"{f.Kind.ToName()}\"";
        void Family(string name, string type, string help, Func<PriceFeedStatus, string?> value)
        {
            page.Append("# HELP ").Append(name).Append(' ').Append(help).Append("\n# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
            foreach (var f in status)
            {
                if (value(f) is { } v)
                    page.Append(name).Append('{').Append(Labels(f)).Append("} ").Append(v).Append('\n');
            }
        }
        static string N(long v) => v.ToString(CultureInfo.InvariantCulture);
        static string? Seconds(DateTimeOffset? t) => t is { } at ? (at.ToUnixTimeMilliseconds() / 1000m).ToString(CultureInfo.InvariantCulture) : null;
        Family("burnrate_price_feed_up", "gauge", "1 when the feed's last poll succeeded, else 0 (its last good prices stay in force).", f => f.Up ? "1" : "0");
        Family("burnrate_price_feed_last_success_timestamp_seconds", "gauge", "Unix time of the feed's last successful poll (absent before the first).", f => Seconds(f.LastSuccessAt));
        Family("burnrate_price_feed_last_attempt_timestamp_seconds", "gauge", "Unix time of the feed's last poll.", f => Seconds(f.LastAttemptAt));
        Family("burnrate_price_feed_polls_total", "counter", "Polls of the feed since start.", f => N(f.Polls));
        Family("burnrate_price_feed_errors_total", "counter", "Failed polls of the feed since start (HTTP error, unreadable body, timeout).", f => N(f.Errors));
        Family("burnrate_price_feed_consecutive_failures", "gauge", "Failed polls since the feed's last success.", f => N(f.ConsecutiveFailures));
        Family("burnrate_price_feed_prices", "gauge", "Prices the feed's last successful poll read (held while later polls fail).", f => N(f.PricesHeld));
        Family("burnrate_price_feed_book_changes_total", "counter", "Entries the feed wrote into the price book (a price equal to the one in force writes none).", f => N(f.BookChanges));
        return page.ToString();
    }

    private static string Escape(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
}
