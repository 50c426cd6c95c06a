using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Burnrate.Alerting.Delivery;

/// <summary>The request bodies each target kind takes (docs/alerts.md, "Delivery").</summary>
internal static class AlertPayloads
{
    /// <summary>
    /// Alertmanager API v2 <c>postableAlerts</c> (telemetry-formats §7.1): labels, annotations, startsAt, endsAt only
    /// when resolved (Alertmanager reads an <c>endsAt</c> not after now as resolved), generatorURL.
    /// </summary>
    public static byte[] Alertmanager(IEnumerable<AlertNotification> alerts, Uri? externalUrl)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartArray();
            foreach (var alert in alerts)
            {
                json.WriteStartObject();
                Map(json, "labels", WithAlertname(alert));
                Map(json, "annotations", alert.Annotations);
                json.WriteString("startsAt", Time(alert.StartsAt));
                if (alert.State == AlertState.Resolved)
                {
                    // Alertmanager answers 400 to an endsAt before startsAt.
                    var ends = alert.EndsAt ?? alert.EvidenceAt;
                    json.WriteString("endsAt", Time(ends < alert.StartsAt ? alert.StartsAt : ends));
                }
                if (GeneratorUrl(externalUrl) is { } generator)
                    json.WriteString("generatorURL", generator);
                json.WriteEndObject();
            }
            json.WriteEndArray();
        }
        return buffer.ToArray();
    }

    /// <summary>Burnrate's generic webhook body, version 1.</summary>
    public static byte[] Webhook(IEnumerable<AlertNotification> alerts, Uri? externalUrl)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("version", "1");
            json.WriteString("source", "burnrate");
            json.WriteStartArray("alerts");
            foreach (var alert in alerts)
            {
                json.WriteStartObject();
                json.WriteString("rule", alert.Rule);
                json.WriteString("fingerprint", alert.Fingerprint);
                json.WriteString("status", Status(alert.State));
                Map(json, "labels", WithAlertname(alert));
                Map(json, "annotations", alert.Annotations);
                json.WriteString("starts_at", Time(alert.StartsAt));
                if (alert.EndsAt is { } ends)
                    json.WriteString("ends_at", Time(ends));
                else
                    json.WriteNull("ends_at");
                json.WriteString("evidence_at", Time(alert.EvidenceAt));
                if (GeneratorUrl(externalUrl) is { } generator)
                    json.WriteString("generator_url", generator);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        return buffer.ToArray();
    }

    /// <summary>A Slack incoming-webhook message for one notification: <c>text</c> (the fallback) and <c>blocks</c>.</summary>
    public static byte[] Slack(AlertNotification alert)
    {
        var summary = alert.Annotations.TryGetValue("summary", out var s) ? s : alert.Rule;
        var headline = $"[{Status(alert.State).ToUpperInvariant()}] {alert.Rule}: {summary}";
        var details = new StringBuilder();
        foreach (var key in new[] { "description", "usd_per_hour", "cost_so_far_usd", "projected_usd", "owner", "since" })
        {
            if (alert.Annotations.TryGetValue(key, out var value))
                details.Append(CultureInfo.InvariantCulture, $"\n*{key}*: {Escape(value)}");
        }
        var labels = string.Join(", ", alert.Labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}={Escape(l.Value)}"));
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("text", headline);
            json.WriteStartArray("blocks");
            json.WriteStartObject();
            json.WriteString("type", "section");
            json.WriteStartObject("text");
            json.WriteString("type", "mrkdwn");
            json.WriteString("text", "*" + Escape(headline) + "*" + details);
            json.WriteEndObject();
            json.WriteEndObject();
            json.WriteStartObject();
            json.WriteString("type", "context");
            json.WriteStartArray("elements");
            json.WriteStartObject();
            json.WriteString("type", "mrkdwn");
            json.WriteString("text", labels.Length == 0 ? "-" : labels);
            json.WriteEndObject();
            json.WriteEndArray();
            json.WriteEndObject();
            json.WriteEndArray();
            json.WriteEndObject();
        }
        return buffer.ToArray();
    }

    /// <summary><c>firing</c> or <c>resolved</c>, as Alertmanager writes it.</summary>
    public static string Status(AlertState state) => state == AlertState.Resolved ? "resolved" : "firing";

    private static IReadOnlyDictionary<string, string> WithAlertname(AlertNotification alert)
    {
        if (alert.Labels.ContainsKey("alertname"))
            return alert.Labels;
        // Alertmanager requires alertname; the contract says it is the rule's name.
        var labels = new Dictionary<string, string>(alert.Labels, StringComparer.Ordinal) { ["alertname"] = alert.Rule };
        return labels;
    }

    private static void Map(Utf8JsonWriter json, string name, IReadOnlyDictionary<string, string> map)
    {
        json.WriteStartObject(name);
        foreach (var (key, value) in map.OrderBy(p => p.Key, StringComparer.Ordinal))
            json.WriteString(key, value);
        json.WriteEndObject();
    }

    private static string? GeneratorUrl(Uri? externalUrl) =>
        externalUrl is null ? null : externalUrl.AbsoluteUri.TrimEnd('/') + "/alerts";

    private static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    // Slack mrkdwn: &, < and > are control characters.
    private static string Escape(string text) => text.Replace("&", "&amp;", StringComparison.Ordinal).Replace("<", "&lt;", StringComparison.Ordinal).Replace(">", "&gt;", StringComparison.Ordinal);
}
