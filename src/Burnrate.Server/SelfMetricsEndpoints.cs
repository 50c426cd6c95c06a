using System.Globalization;
using System.Text;
using Burnrate.Alerting.Delivery;
using Burnrate.Configuration;
using Burnrate.Ingest;
using Burnrate.Rating;
using Burnrate.Telemetry.Mapping;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Burnrate.Server;

/// <summary>
/// <c>GET /metrics</c>: Burnrate's own health in the Prometheus text exposition format (version 0.0.4): what the receivers
/// took and refused, what the mapper ignored and why, the queue, the write-ahead log and how far rating has got. Every
/// series is listed in docs/ingest.md.
/// </summary>
public static class SelfMetricsEndpoints
{
    /// <summary>Maps <c>GET /metrics</c>.</summary>
    public static IEndpointRouteBuilder MapSelfMetrics(this IEndpointRouteBuilder app)
    {
        app.MapGet("/metrics", (HttpContext context) =>
        {
            var ingest = context.RequestServices.GetService<IngestPipeline>();
            var time = context.RequestServices.GetService<TimeProvider>() ?? TimeProvider.System;
            var alerts = context.RequestServices.GetService<AlertDispatcher>();
            var now = time.GetUtcNow();
            var pipeline = context.RequestServices.GetService<CostPipeline>();
            // A team-scoped key gets its team's cost series only: Burnrate's own health is the whole fleet's business.
            if (BurnratePrincipal.Of(context).Team is { } team)
                return Results.Text(CostMetrics.Render(pipeline, now, team), "text/plain; version=0.0.4; charset=utf-8");
            var connectors = ConnectorEndpoints.RenderMetrics(context.RequestServices.GetService<Connectors.ConnectorRegistry>(), now);
            var role = RenderRole(context.RequestServices.GetService<ServerRole>(), context.RequestServices.GetService<Alerting.AlertRuler>(), now);
            var retention = RenderRetention(context.RequestServices.GetService<Storage.LedgerHousekeeper>());
            return Results.Text(role + Render(ingest, now) + retention + RenderTerms(pipeline) + RenderDelivery(alerts) + PriceFeedEndpoints.Render(context.RequestServices.GetService<Pricing.Feeds.PriceFeeds>()) + connectors + CostMetrics.Render(pipeline, now), "text/plain; version=0.0.4; charset=utf-8");
        }).RequireScope(ApiScopes.Read);
        app.MapGet("/api/v1/alerts/delivery", (HttpContext context) =>
        {
            var alerts = context.RequestServices.GetService<AlertDispatcher>();
            return Results.Json(new
            {
                targets = (alerts?.Status ?? []).Select(t => new
                {
                    name = t.Name,
                    kind = t.Kind.ToString().ToLowerInvariant(),
                    sent = t.Sent,
                    failed = t.Failed,
                    retries = t.Retries,
                    dropped_queue_full = t.DroppedQueueFull,
                    deduplicated = t.Deduplicated,
                    queued = t.Queued,
                    last_error = t.LastError,
                    last_error_at = t.LastErrorAt,
                    last_success_at = t.LastSuccessAt,
                }),
                actions_dropped = alerts?.ActionsDropped ?? 0,
            });
        }).RequireScope(ApiScopes.Admin); // target names and errors are operators' business

        return app;
    }

    /// <summary>
    /// The role of a scaled-out server and, for the ruler, how far it has evaluated; empty for the single process
    /// (docs/scale-out.md).
    /// </summary>
    public static string RenderRole(ServerRole? role, Alerting.AlertRuler? ruler, DateTimeOffset now)
    {
        if (role is null)
            return "";
        var page = new StringBuilder();
        Family(page, "burnrate_role", "gauge", "The role this server plays (serve --role), always 1.");
        page.Append(CultureInfo.InvariantCulture, $"burnrate_role{{role=\"{role.Name}\"}} 1\n");
        Family(page, "burnrate_alert_evaluation_enabled", "gauge", "1 when this process evaluates alert rules and delivers them, 0 when another (the ruler) does.");
        Line(page, "burnrate_alert_evaluation_enabled", null, role.EvaluatesAlerts ? 1 : 0);
        if (ruler is null)
            return page.ToString();
        Family(page, "burnrate_ruler_leader", "gauge", "1 while this ruler leads (evaluates and delivers), 0 while another does (docs/scale-out.md, several rulers).");
        Line(page, "burnrate_ruler_leader", null, ruler.IsLeader ? 1 : 0);
        Family(page, "burnrate_ruler_minutes_evaluated_total", "counter", "Settled minutes the ruler read from the store and evaluated.");
        Line(page, "burnrate_ruler_minutes_evaluated_total", null, ruler.MinutesEvaluated);
        Family(page, "burnrate_ruler_late_minutes_total", "counter", "Evaluated minutes found written again later (late ledger rows): their cost went into budget spend, their rules were not evaluated again.");
        Line(page, "burnrate_ruler_late_minutes_total", null, ruler.LateMinutes);
        // A standby's cursor stands still: its lag would only say that another ruler leads.
        if (ruler.IsLeader && ruler.EvaluatedThrough is { } through)
        {
            Family(page, "burnrate_ruler_evaluated_through_timestamp_seconds", "gauge", "End of the last minute the ruler evaluated, Unix seconds.");
            Line(page, "burnrate_ruler_evaluated_through_timestamp_seconds", null, through.ToUnixTimeSeconds());
            Family(page, "burnrate_ruler_lag_seconds", "gauge", "Seconds from the end of the last minute evaluated to now (the settle time plus up to a minute and a tick when keeping up).");
            Line(page, "burnrate_ruler_lag_seconds", null, (long)(now - through).TotalSeconds);
        }
        return page.ToString();
    }

    /// <summary>Alert delivery series, per target (its name, never its URL); empty without a dispatcher. docs/alerts.md.</summary>
    public static string RenderDelivery(AlertDispatcher? alerts)
    {
        var page = new StringBuilder();
        if (alerts is null)
            return "";
        var targets = alerts.Status;
        string Target(DeliveryTargetStatus t) => $"target=\"{Escape(t.Name)}\",kind=\"{t.Kind.ToString().ToLowerInvariant()}\"";
        Family(page, "burnrate_alert_notifications_sent_total", "counter", "Notifications delivered (2xx), by target.");
        foreach (var t in targets)
            Line(page, "burnrate_alert_notifications_sent_total", Target(t), t.Sent);
        Family(page, "burnrate_alert_notifications_failed_total", "counter", "Notifications given up on (4xx, or every attempt failed), by target.");
        foreach (var t in targets)
            Line(page, "burnrate_alert_notifications_failed_total", Target(t), t.Failed);
        Family(page, "burnrate_alert_notification_retries_total", "counter", "Retried requests (5xx, timeout, network error), by target.");
        foreach (var t in targets)
            Line(page, "burnrate_alert_notification_retries_total", Target(t), t.Retries);
        Family(page, "burnrate_alert_notifications_dropped_total", "counter", "Notifications not sent: queue full, or already delivered.");
        foreach (var t in targets)
        {
            Line(page, "burnrate_alert_notifications_dropped_total", Target(t) + ",reason=\"queue_full\"", t.DroppedQueueFull);
            Line(page, "burnrate_alert_notifications_dropped_total", Target(t) + ",reason=\"deduplicated\"", t.Deduplicated);
        }
        Family(page, "burnrate_alert_queue_items", "gauge", "Notifications waiting, by target.");
        foreach (var t in targets)
            Line(page, "burnrate_alert_queue_items", Target(t), t.Queued);
        Family(page, "burnrate_alert_delivery_latency_seconds", "histogram", "Seconds from a firing alert's evidence to its delivery (2xx), by target.");
        foreach (var t in targets)
        {
            for (var i = 0; i < t.Latency.CumulativeBuckets.Count; i++)
            {
                var le = i < AlertDispatcher.LatencyBucketsSeconds.Count ? AlertDispatcher.LatencyBucketsSeconds[i].ToString(CultureInfo.InvariantCulture) : "+Inf";
                Line(page, "burnrate_alert_delivery_latency_seconds_bucket", Target(t) + $",le=\"{le}\"", t.Latency.CumulativeBuckets[i]);
            }
            page.Append("burnrate_alert_delivery_latency_seconds_sum{").Append(Target(t)).Append("} ").Append(t.Latency.SumSeconds.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
            Line(page, "burnrate_alert_delivery_latency_seconds_count", Target(t), t.Latency.Count);
        }
        return page.ToString();
    }

    private static string Escape(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    /// <summary>The exposition page for <paramref name="ingest"/> (an empty page when the server does not ingest).</summary>
    public static string Render(IngestPipeline? ingest, DateTimeOffset now)
    {
        var page = new StringBuilder();
        if (ingest is null)
            return page.ToString();
        var kinds = Enum.GetValues<IngestKind>().Where(k => k != IngestKind.RatingMark).ToArray();
        var stats = ingest.Stats;

        Family(page, "burnrate_ingest_requests_total", "counter", "Inputs acknowledged, by receiver.");
        foreach (var kind in kinds)
            Line(page, "burnrate_ingest_requests_total", Receiver(kind), stats.Requests(kind));
        Family(page, "burnrate_ingest_samples_total", "counter", "Metric samples acknowledged, by receiver.");
        foreach (var kind in kinds)
            Line(page, "burnrate_ingest_samples_total", Receiver(kind), stats.Samples(kind));
        Family(page, "burnrate_ingest_events_total", "counter", "Lifecycle events acknowledged.");
        Line(page, "burnrate_ingest_events_total", Receiver(IngestKind.Events), stats.Events(IngestKind.Events));
        Family(page, "burnrate_ingest_rejected_total", "counter", "Inputs refused: invalid (400, 413, 415) or busy (503).");
        foreach (var kind in kinds)
        {
            Line(page, "burnrate_ingest_rejected_total", Receiver(kind) + ",reason=\"invalid\"", stats.InvalidRejections(kind));
            Line(page, "burnrate_ingest_rejected_total", Receiver(kind) + ",reason=\"busy\"", stats.BusyRejections(kind));
        }
        Family(page, "burnrate_ingest_apply_failures_total", "counter", "Accepted inputs whose mapping or rating failed (logged).");
        Line(page, "burnrate_ingest_apply_failures_total", null, stats.ApplyFailures);
        Family(page, "burnrate_ingest_replayed_total", "counter", "Inputs replayed from the write-ahead log at start.");
        Line(page, "burnrate_ingest_replayed_total", null, stats.Replayed);

        var mapper = ingest.MapperStats;
        Family(page, "burnrate_mapper_samples_used_total", "counter", "Samples that changed the inventory or produced an event.");
        Line(page, "burnrate_mapper_samples_used_total", null, mapper.Used);
        Family(page, "burnrate_mapper_samples_ignored_total", "counter", "Samples the mapper did not use, by reason.");
        foreach (var reason in Enum.GetValues<SampleIgnoreReason>())
            Line(page, "burnrate_mapper_samples_ignored_total", $"reason=\"{Snake(reason.ToString())}\"", mapper.Ignored(reason));

        Family(page, "burnrate_ingest_queue_items", "gauge", "Samples and events accepted and not yet applied.");
        Line(page, "burnrate_ingest_queue_items", null, ingest.QueuedItems);
        Family(page, "burnrate_ingest_queue_capacity_items", "gauge", "Queue bound; above it receivers answer 503.");
        Line(page, "burnrate_ingest_queue_capacity_items", null, ingest.QueueCapacity);
        if (ingest.Wal is { } wal)
        {
            Family(page, "burnrate_wal_bytes", "gauge", "Bytes in the write-ahead log.");
            Line(page, "burnrate_wal_bytes", null, wal.Bytes);
            Family(page, "burnrate_wal_segments", "gauge", "Segment files in the write-ahead log.");
            Line(page, "burnrate_wal_segments", null, wal.SegmentCount);
        }
        var cost = ingest.Cost;
        Family(page, "burnrate_ledger_rows_written_total", "counter", "Ledger rows written since start.");
        Line(page, "burnrate_ledger_rows_written_total", null, cost.LineCount);
        Family(page, "burnrate_ledger_pending_rows", "gauge", "Rated rows waiting for the store after a failed write.");
        Line(page, "burnrate_ledger_pending_rows", null, cost.PendingRows);
        if (cost.RatedThrough is { } through)
        {
            Family(page, "burnrate_rating_lag_seconds", "gauge", "Now minus the end of the last minute rated.");
            page.Append("burnrate_rating_lag_seconds ").Append((now - through).TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)).Append('\n');
        }
        return page.ToString();
    }

    /// <summary>The calibration factors in force and the savings plans' unspent commitment (docs/billing.md); empty without rating.</summary>
    public static string RenderTerms(CostPipeline? cost)
    {
        var page = new StringBuilder();
        if (cost is null)
            return "";
        var factors = cost.Calibration.Factors;
        if (factors.Count > 0)
        {
            Family(page, "burnrate_calibration_factor", "gauge", "Bill's effective cost per dollar of estimate, learned by reconciliation and applied to live rates.");
            foreach (var f in factors)
            {
                page.Append("burnrate_calibration_factor{provider=\"").Append(Escape(f.Provider))
                    .Append("\",usage=\"").Append(f.Usage == Pricing.Terms.CalibratedUsage.Network ? "network" : "compute")
                    .Append("\",instance_type=\"").Append(Escape(f.InstanceType))
                    .Append("\",capacity_type=\"").Append(Pricing.CapacityTypes.ToName(f.Capacity))
                    .Append("\"} ").Append(f.Factor.ToString(CultureInfo.InvariantCulture)).Append('\n');
            }
        }
        var unspent = cost.UnspentCommitments;
        if (unspent.Count > 0)
        {
            Family(page, "burnrate_savings_plan_unspent_dollars_per_hour", "gauge", "Commitment a savings plan did not spend in the last minute rated, $/h.");
            foreach (var (plan, dollars) in unspent.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                page.Append("burnrate_savings_plan_unspent_dollars_per_hour{plan=\"").Append(Escape(plan)).Append("\"} ").Append(dollars.ToString(CultureInfo.InvariantCulture)).Append('\n');
        }
        return page.ToString();
    }

    private static string Receiver(IngestKind kind) => kind switch
    {
        IngestKind.RemoteWrite => "receiver=\"remote_write\"",
        IngestKind.OtlpProtobuf => "receiver=\"otlp\",encoding=\"protobuf\"",
        IngestKind.OtlpJson => "receiver=\"otlp\",encoding=\"json\"",
        IngestKind.Exposition => "receiver=\"scrape\"",
        IngestKind.Events => "receiver=\"events\"",
        _ => "receiver=\"unknown\"",
    };

    /// <summary>What <c>storage.retention</c> dropped (docs/ingest.md); empty where this process does not apply it.</summary>
    public static string RenderRetention(Storage.LedgerHousekeeper? housekeeper)
    {
        if (housekeeper is null)
            return "";
        var status = housekeeper.Status;
        var page = new StringBuilder();
        Family(page, "burnrate_retention_rows_dropped_total", "counter", "Rows storage.retention dropped, per table (ClickHouse: rows of the dropped partitions, once per shard).");
        foreach (var table in (string[])["cost_minutes", "cost_hourly", "cost_daily", "work_minutes"])
            Line(page, "burnrate_retention_rows_dropped_total", $"table=\"{table}\"", status.RowsDropped.GetValueOrDefault(table));
        Family(page, "burnrate_retention_partitions_dropped_total", "counter", "ClickHouse partitions storage.retention dropped (0 on DuckDB, which deletes rows).");
        Line(page, "burnrate_retention_partitions_dropped_total", null, status.PartitionsDropped);
        Family(page, "burnrate_retention_runs_total", "counter", "Retention runs (once at start, then hourly), failed ones included.");
        Line(page, "burnrate_retention_runs_total", null, status.Runs);
        Family(page, "burnrate_retention_failures_total", "counter", "Retention runs that failed (retried at the next run).");
        Line(page, "burnrate_retention_failures_total", null, status.Failures);
        if (status.LastSuccessAt is { } success)
        {
            Family(page, "burnrate_retention_last_success_timestamp_seconds", "gauge", "When the last successful retention run started (Unix seconds).");
            Line(page, "burnrate_retention_last_success_timestamp_seconds", null, success.ToUnixTimeSeconds());
        }
        if (status.LastRun is { } run)
        {
            Family(page, "burnrate_retention_horizon_timestamp_seconds", "gauge", "The first instant each resolution is kept from after the last run (Unix seconds); absent for a resolution kept forever.");
            foreach (var (resolution, horizon) in (ReadOnlySpan<(string, DateTime?)>)[("minute", run.Horizons.Minutes), ("hour", run.Horizons.Hours), ("day", run.Horizons.Days)])
            {
                if (horizon is { } h)
                    Line(page, "burnrate_retention_horizon_timestamp_seconds", $"resolution=\"{resolution}\"", new DateTimeOffset(h, TimeSpan.Zero).ToUnixTimeSeconds());
            }
        }
        return page.ToString();
    }

    private static void Family(StringBuilder page, string name, string type, string help) =>
        page.Append("# HELP ").Append(name).Append(' ').Append(help).Append("\n# TYPE ").Append(name).Append(' ').Append(type).Append('\n');

    private static void Line(StringBuilder page, string name, string? labels, long value)
    {
        page.Append(name);
        if (labels is not null)
            page.Append('{').Append(labels).Append('}');
        page.Append(' ').Append(value.ToString(CultureInfo.InvariantCulture)).Append('\n');
    }

    private static string Snake(string pascal)
    {
        var text = new StringBuilder();
        for (var i = 0; i < pascal.Length; i++)
        {
            if (char.IsUpper(pascal[i]) && i > 0)
                text.Append('_');
            text.Append(char.ToLowerInvariant(pascal[i]));
        }
        return text.ToString();
    }
}
