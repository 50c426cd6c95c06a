using System.Globalization;
using System.Text;
using Burnrate.Configuration;
using Burnrate.Connectors;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Burnrate.Server;

/// <summary>
/// <c>GET /api/v1/connectors</c>: each orchestrator connector's health (last poll, last success, lag, the last error,
/// counts), and the same as <c>burnrate_connector_*</c> series on <c>/metrics</c>. A connector that fails says so here
/// while the rest of the server runs on (docs/connectors.md).
/// </summary>
public static class ConnectorEndpoints
{
    /// <summary>Maps <c>GET /api/v1/connectors</c>.</summary>
    public static IEndpointRouteBuilder MapConnectorApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/v1/connectors", GetConnectors).RequireScope(ApiScopes.Read);
        return app;
    }

    private static IResult GetConnectors(HttpContext context)
    {
        if (ApiJson.RefuseUnknownParameters(context.Request.Query, "Invalid connectors query") is { } refused)
            return refused;
        var registry = context.RequestServices.GetService<ConnectorRegistry>();
        var now = (context.RequestServices.GetService<TimeProvider>() ?? TimeProvider.System).GetUtcNow();
        return ApiJson.Document(json =>
        {
            json.WriteStartObject();
            json.WriteString("at", ApiJson.Time(now));
            json.WriteStartArray("connectors");
            foreach (var c in registry?.Connectors ?? [])
            {
                var h = c.Health;
                json.WriteStartObject();
                json.WriteString("name", h.Name);
                json.WriteString("kind", h.Kind);
                json.WriteString("status", Status(h));
                ApiJson.WriteTimeOrNull(json, "last_poll", h.LastPoll);
                ApiJson.WriteTimeOrNull(json, "last_success", h.LastSuccess);
                if (h.Lag(now) is { } lag)
                    json.WriteNumber("lag_seconds", Math.Round(lag.TotalSeconds, 3));
                else
                    json.WriteNull("lag_seconds");
                if (h.LastError is { } error)
                    json.WriteString("last_error", error);
                else
                    json.WriteNull("last_error");
                json.WriteNumber("polls", h.Polls);
                json.WriteNumber("failures", h.Failures);
                json.WriteNumber("last_duration_seconds", Math.Round(h.LastDuration.TotalSeconds, 3));
                json.WriteNumber("events", h.Events);
                json.WriteNumber("tracked", h.Tracked);
                json.WriteString("source", h.Source);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        });
    }

    /// <summary><c>starting</c> before the first poll, <c>ok</c> when the last poll succeeded, else <c>failing</c>.</summary>
    public static string Status(ConnectorHealth health)
    {
        ArgumentNullException.ThrowIfNull(health);
        return health.LastPoll is null ? "starting" : health.LastError is null ? "ok" : "failing";
    }

    /// <summary>The <c>burnrate_connector_*</c> series (docs/metrics.md); empty without connectors.</summary>
    public static string RenderMetrics(ConnectorRegistry? registry, DateTimeOffset now)
    {
        if (registry is null || registry.Connectors.Count == 0)
            return "";
        var page = new StringBuilder();
        var all = registry.Connectors.Select(c => c.Health).ToList();
        static string L(ConnectorHealth h) => $"connector=\"{h.Name}\",kind=\"{h.Kind}\"";
        void Family(string name, string type, string help, Func<ConnectorHealth, double?> value)
        {
            page.Append("# HELP ").Append(name).Append(' ').Append(help).Append("\n# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
            foreach (var h in all)
            {
                if (value(h) is { } v)
                    page.Append(name).Append('{').Append(L(h)).Append("} ").Append(v.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
            }
        }
        Family("burnrate_connector_up", "gauge", "1 when the connector's last poll succeeded, 0 when it failed or none ran yet.", h => h.LastPoll is not null && h.LastError is null ? 1 : 0);
        Family("burnrate_connector_polls_total", "counter", "Polls of the orchestrator.", h => h.Polls);
        Family("burnrate_connector_poll_failures_total", "counter", "Polls that failed (the reason is in GET /api/v1/connectors and the log).", h => h.Failures);
        Family("burnrate_connector_events_total", "counter", "Lifecycle events the connector handed to ingest.", h => h.Events);
        Family("burnrate_connector_tracked_jobs", "gauge", "Jobs started and not yet ended that the connector follows.", h => h.Tracked);
        Family("burnrate_connector_last_success_timestamp_seconds", "gauge", "Unix time of the last successful poll.", h => h.LastSuccess?.ToUnixTimeMilliseconds() / 1000.0);
        Family("burnrate_connector_lag_seconds", "gauge", "Seconds since the last successful poll.", h => h.Lag(now)?.TotalSeconds);
        Family("burnrate_connector_poll_duration_seconds", "gauge", "How long the last poll took.", h => h.LastDuration.TotalSeconds);
        return page.ToString();
    }
}
