using System.Globalization;
using System.Text.Json;
using Burnrate.Alerting;
using Burnrate.Configuration;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Burnrate.Server;

/// <summary>
/// <c>GET /api/v1/alerts</c>: the alerts pending or firing now, with their labels and annotations (docs/alerts.md).
/// Without an alert engine (no rules) the list is empty.
/// </summary>
public static class AlertEndpoints
{
    /// <summary>Maps <c>GET /api/v1/alerts</c>.</summary>
    public static IEndpointRouteBuilder MapAlertsApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/v1/alerts", (HttpContext context) =>
        {
            var engine = context.RequestServices.GetService<AlertEngine>();
            // A team-scoped key sees the alerts whose team label is its team.
            var principal = BurnratePrincipal.Of(context);
            var alerts = (engine?.Current() ?? []).Where(a => principal.Sees(a.Labels.GetValueOrDefault("team")));
            using var stream = new MemoryStream();
            using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
            {
                json.WriteStartObject();
                json.WriteNumber("rules", engine?.Rules.Count ?? 0);
                json.WriteStartArray("alerts");
                foreach (var a in alerts.OrderBy(a => a.StartsAt).ThenBy(a => a.Rule, StringComparer.Ordinal))
                    WriteAlert(json, a);
                json.WriteEndArray();
                json.WriteEndObject();
            }
            return Results.Bytes(stream.ToArray(), "application/json; charset=utf-8");
        }).RequireScope(ApiScopes.Read);
        return app;
    }

    /// <summary>One alert as <c>GET /api/v1/alerts</c> lists it (also used by the workload detail).</summary>
    internal static void WriteAlert(Utf8JsonWriter json, AlertNotification a)
    {
        json.WriteStartObject();
        json.WriteString("rule", a.Rule);
        json.WriteString("fingerprint", a.Fingerprint);
        json.WriteString("state", a.State.ToString().ToLowerInvariant());
        json.WriteString("starts_at", Time(a.StartsAt));
        json.WriteString("evidence_at", Time(a.EvidenceAt));
        Map(json, "labels", a.Labels);
        Map(json, "annotations", a.Annotations);
        json.WriteEndObject();
    }

    private static void Map(Utf8JsonWriter json, string name, IReadOnlyDictionary<string, string> values)
    {
        json.WriteStartObject(name);
        foreach (var (k, v) in values.OrderBy(p => p.Key, StringComparer.Ordinal))
            json.WriteString(k, v);
        json.WriteEndObject();
    }

    private static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
}
