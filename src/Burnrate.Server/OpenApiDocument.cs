using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Burnrate.Configuration;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Burnrate.Server;

/// <summary>
/// <c>GET /openapi/v1.json</c>: the OpenAPI 3.1 document of the whole HTTP API. Handlers write their JSON by hand, so the
/// document is written here, by hand too, next to them; a test fails when a mapped route is missing from it, and an
/// approval snapshot (test/Burnrate.Tests/Approvals/openapi.v1.json) shows every change in review. Deterministic:
/// properties in the order written, no timestamps.
/// </summary>
public static class OpenApiDocument
{
    /// <summary>Where the document is served.</summary>
    public const string Path = "/openapi/v1.json";

    private const string ProblemJson = "application/problem+json";
    private const string Json = "application/json";

    /// <summary>How the document is written: indented; only what JSON requires is escaped (it is served as JSON, never embedded in HTML).</summary>
    public static JsonSerializerOptions WriteOptions { get; } = new() { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static readonly Lazy<string> s_text = new(() => Build().ToJsonString(WriteOptions) + "\n");

    /// <summary>The document as served (indented JSON, a trailing newline).</summary>
    public static string Text => s_text.Value;

    /// <summary>Maps <c>GET /openapi/v1.json</c>.</summary>
    public static IEndpointRouteBuilder MapOpenApiDocument(this IEndpointRouteBuilder app)
    {
        app.MapGet(Path, () => Results.Text(Text, "application/json; charset=utf-8")).RequireScope(ApiScopes.None); // describes the API, holds no data
        return app;
    }

    /// <summary>Builds the document (a fresh tree each call).</summary>
    public static JsonObject Build() => new()
    {
        ["openapi"] = "3.1.0",
        ["info"] = new JsonObject
        {
            ["title"] = "Burnrate HTTP API",
            ["version"] = "v1",
            ["description"] = "Real-time GPU cost monitoring: ingest (remote write, OTLP, events), the cost ledger, live burn rates, workloads, fleet, prices and alerts. "
                + "Money is an exact decimal string with nine decimals (dollars to the nano-dollar), never a floating-point number. "
                + "Times are RFC 3339 UTC. Every error is RFC 7807 problem details (application/problem+json). See docs/api.md.",
        },
        ["servers"] = new JsonArray(new JsonObject { ["url"] = "http://127.0.0.1:9840" }),
        ["paths"] = Secured(Paths()),
        ["components"] = new JsonObject
        {
            ["schemas"] = Schemas(),
            ["securitySchemes"] = new JsonObject
            {
                ["bearer"] = new JsonObject
                {
                    ["type"] = "http",
                    ["scheme"] = "bearer",
                    ["description"] = "An API key from the config's auth.keys, as Authorization: Bearer KEY (or X-Api-Key: KEY). Needed only when the server has keys; "
                        + "scopes ingest, read, admin; a team-scoped read key sees its team only. See docs/security.md.",
                },
            },
        },
    };

    /// <summary>The paths anyone may call, with or without a key.</summary>
    private static readonly HashSet<string> s_open = new(StringComparer.Ordinal) { "/healthz", Path };

    /// <summary>Every operation but the open ones needs a key (when the server has keys): 401 without one, 403 outside its scope.</summary>
    private static JsonObject Secured(JsonObject paths)
    {
        foreach (var (path, item) in paths)
        {
            if (s_open.Contains(path))
                continue;
            foreach (var (_, operation) in item!.AsObject())
            {
                operation!["security"] = new JsonArray(new JsonObject { ["bearer"] = new JsonArray() });
                var responses = operation["responses"]!.AsObject();
                var fallback = responses["default"]!.DeepClone();
                responses.Remove("default");
                responses["401"] = Content("No API key, or one the server does not know (WWW-Authenticate: Bearer)", (ProblemJson, Ref("Problem")));
                responses["403"] = Content("The key lacks the scope (ingest, read or admin) this operation needs, or a team-scoped key asks for another team", (ProblemJson, Ref("Problem")));
                responses["default"] = fallback;
            }
        }
        return paths;
    }

    private static JsonObject Paths() => new()
    {
        ["/api/v1/write"] = Post("Prometheus remote write 1.0 and 2.0",
            "A snappy-compressed protobuf WriteRequest (1.0) or io.prometheus.write.v2.Request (2.0), chosen by Content-Type. Acknowledged once written to the write-ahead log.",
            Body(true, ("application/x-protobuf", Binary())),
            Responses(("204", Empty("Accepted (2.0 answers with X-Prometheus-Remote-Write-*-Written headers)")),
                Problem("400", "The body does not decode"), Problem("413", "The body is too large"),
                Problem("415", "Unsupported Content-Type or Content-Encoding"), Problem("503", "The ingest queue is full (Retry-After), or no ingest pipeline runs")),
            "ingest"),
        ["/v1/metrics"] = Post("OTLP/HTTP metrics",
            "An ExportMetricsServiceRequest in protobuf or JSON, optionally gzip-compressed.",
            Body(true, ("application/x-protobuf", Binary()), (Json, new JsonObject { ["type"] = "object", ["description"] = "OTLP JSON ExportMetricsServiceRequest" })),
            Responses(("200", Content("ExportMetricsServiceResponse (partial_success when points were rejected)",
                    ("application/x-protobuf", Binary()), (Json, new JsonObject { ["type"] = "object" }))),
                Problem("400", "The body does not decode"), Problem("413", "The body is too large"),
                Problem("415", "Unsupported Content-Type or Content-Encoding"), Problem("503", "The ingest queue is full (Retry-After), or no ingest pipeline runs")),
            "ingest"),
        ["/api/v1/events"] = Post("JSON lifecycle and usage events",
            "One event, an array of events, or {\"events\": [...]}; all or nothing. Event types and fields: docs/api.md.",
            Body(true, (Json, new JsonObject { ["oneOf"] = new JsonArray(Ref("Event"), Array(Ref("Event")), Object(("events", Array(Ref("Event"))))) })),
            Responses(("202", Content("Accepted", (Json, Ref("EventsAccepted")))),
                Problem("400", "An event is invalid (detail names its index and field)"), Problem("413", "The body is larger than 1 MiB"),
                Problem("415", "Content-Type is not application/json"), Problem("503", "The ingest queue is full (Retry-After), or no ingest pipeline runs")),
            "ingest"),
        ["/api/v1/events/aws-batch"] = Post("AWS Batch job state changes from Amazon EventBridge",
            "One EventBridge 'Batch Job State Change' event or an array of them, as an API destination sends them; query parameters instance_type (required: the job queue's instance type) and capacity (on_demand, spot or reserved; default on_demand). Each job that ran becomes its share of that instance; a Metaflow job name ({user}-{flow}-{run}-{step}-{task}-{retry}) becomes the step's workload with metaflow/* labels. docs/api.md.",
            Body(true, (Json, new JsonObject { ["oneOf"] = new JsonArray(new JsonObject { ["type"] = "object" }, Array(new JsonObject { ["type"] = "object" })) })),
            Responses(("202", Content("Accepted (the lifecycle events it became)", (Json, Ref("EventsAccepted")))),
                Problem("400", "Not a Batch job state change, a field is missing, no price for the instance, or a bad query parameter"), Problem("413", "The body is larger than 1 MiB"),
                Problem("415", "Content-Type is not application/json"), Problem("503", "The ingest queue is full (Retry-After), or no ingest pipeline runs")),
            "ingest"),
        ["/api/v1/costs"] = Get("Cost by dimensions over a range",
            "The ledger summed by dimensions over [from, to), optionally in buckets of step.",
            [
                Query("by", "Comma-separated dimensions: team, project, user, workload, cloud, region, gpu, instance_type, capacity, component, cluster, orchestrator, resource (node), idle", String()),
                Query("from", "Start, RFC 3339 or relative (-7d); default -7d", String()),
                Query("to", "End (exclusive), RFC 3339 or relative; default now", String()),
                Query("step", "Bucket width, a whole number of minutes (15m, 1h, 1d); at most 100000 buckets", String()),
                Query("filter", "DIM:V1|V2, repeatable (e.g. team:llm, workload:slurm:4242)", Array(String())),
            ],
            Responses(Ok(Ref("Costs")), Problem("400", "A parameter is invalid (detail names it)")),
            "costs"),
        ["/api/v1/burn"] = Get("Burn rate right now",
            "$/hour per workload and cloud, with what each has cost so far.",
            [],
            Responses(Ok(Ref("Burn")), Problem("503", "This server does not rate live input")),
            "costs"),
        ["/api/v1/workloads"] = Get("Workloads, by burn rate",
            "Every workload known with its current $/h and its cost in [from, to), sorted by $/h, then cost, descending.",
            [
                Query("team", "Only this team (case-insensitive)", String()),
                Query("project", "Only this project", String()),
                Query("user", "Only this user", String()),
                Query("state", "running or ended", Enum("running", "ended")),
                Query("from", "Only workloads alive after this instant; costs from it. Default: the ledger's first minute", String()),
                Query("to", "Only workloads started before this instant; costs up to it. Default: now", String()),
            ],
            Responses(Ok(Ref("WorkloadList")), Problem("400", "A parameter is invalid (detail names it)")),
            "workloads"),
        ["/api/v1/workloads/{id}"] = new JsonObject
        {
            ["get"] = Operation("One workload",
                "Its cost timeline, current GPUs, nodes, cost per unit of work, estimate vs actual and alerts. The id is the rest of the path, "
                + "raw (/api/v1/workloads/metaflow:TrainFlow/1234/train) or percent-encoded (metaflow%3ATrainFlow%2F1234%2Ftrain).",
                [
                    new JsonObject { ["name"] = "id", ["in"] = "path", ["required"] = true, ["description"] = "Workload id, e.g. slurm:4242", ["schema"] = String() },
                    Query("step", "Timeline step, a whole number of minutes (1m, 1h, 1d). Default: the finest of 1m, 5m, 15m, 1h, 6h, 1d, 7d giving at most 500 points over its lifetime", String()),
                    Query("from", "Timeline start; default its start, floored to the step", String()),
                    Query("to", "Timeline end (exclusive); default its end (or now), ceiled to the step", String()),
                ],
                Responses(Ok(Ref("WorkloadDetail")), Problem("400", "A parameter is invalid (detail names it)"), Problem("404", "No workload has this id")),
                "workloads"),
        },
        ["/api/v1/fleet"] = Get("GPU inventory right now",
            "GPUs running by cloud, GPU type, capacity type and team: allocated vs idle, $/h and idle $/h.",
            [],
            Responses(Ok(Ref("Fleet")), Problem("503", "This server does not rate live input")),
            "fleet"),
        ["/api/v1/prices"] = Get("The price book in force",
            "The same entries as `burnrate prices`, sorted by cloud, region, instance type, capacity, zone.",
            [
                Query("gpu", "GPU model prefix, case-insensitive (H100 matches H100 and H100-SXM)", String()),
                Query("cloud", "Provider (aws, gcp, azure, lambda, nebius, runpod, coreweave, ...)", String()),
                Query("region", "Region, e.g. us-east-1", String()),
                Query("capacity", "on_demand, spot or reserved", Enum("on_demand", "spot", "reserved")),
                Query("at", "The instant whose prices to show; default now", String()),
            ],
            Responses(Ok(Ref("Prices")), Problem("400", "A parameter is invalid (detail names it)"), Problem("503", "No price book (no rating pipeline)")),
            "fleet"),
        ["/api/v1/prices/feeds"] = Get("Live price feeds and their state",
            "Each configured feed (pricing.feeds): up, last success, last error, failures in a row, prices held. A failing feed keeps its last good prices in force. See docs/pricing.md#live-price-feeds.",
            [],
            Responses(Ok(Ref("PriceFeeds")), Problem("400", "An unknown parameter (detail names it)")),
            "fleet"),
        ["/api/v1/alerts"] = Get("Alerts pending or firing now", "See docs/alerts.md.", [],
            Responses(Ok(Ref("Alerts"))), "alerts"),
        ["/api/v1/alerts/delivery"] = Get("Alert delivery per notification target", "See docs/alerts.md#delivery. Needs the admin scope.", [],
            Responses(Ok(Ref("AlertDelivery"))), "alerts"),
        ["/api/v1/billing/focus"] = FocusImportPath(),
        ["/api/v1/billing/calibration"] = Get("Calibration in force",
            "The calibration factors live rating applies (learned from reconciled bills: docs/billing.md#calibration), the periods reconciled per provider, "
            + "and each savings plan's commitment left unspent by the last minute rated. Needs the admin scope.", [],
            Responses(Ok(Ref("Calibration"))), "billing"),
        ["/api/v1/focus"] = Get("The ledger as a FOCUS 1.2 file",
            "Burnrate's estimate over [from, to) as FOCUS 1.2 cost and usage rows, one per hour (or minute) and provider, region, resource, instance type, capacity, component, team, project and workload. "
            + "Every FOCUS 1.2 mandatory column is filled; amounts are exact (nine decimals). Columns: docs/billing.md#export.",
            [
                Query("from", "Start, RFC 3339 or relative; floored to the granularity. Default: to − 1 day", String()),
                Query("to", "End (exclusive), RFC 3339 or relative; ceiled to the granularity. Default now", String()),
                Query("format", "csv (default) or parquet", Enum("csv", "parquet")),
                Query("granularity", "hour (default) or minute (at most 31 days)", Enum("hour", "minute")),
            ],
            Responses(("200", Content("The FOCUS file", ("text/csv", String()), ("application/vnd.apache.parquet", Binary()))),
                Problem("400", "A parameter is invalid (detail names it)")),
            "billing"),
        ["/api/v1/connectors"] = Get("Orchestrator connectors and their health",
            "Each connector (Slurm, ...): last poll, last success, lag, the last error and counts; see docs/connectors.md.", [],
            Responses(Ok(Ref("Connectors")), Problem("400", "An unknown parameter")), "operations"),
        ["/metrics"] = Get("Prometheus exposition", "Burnrate's own health and cost series in the Prometheus text format 0.0.4 (docs/ingest.md#self-metrics, docs/metrics.md). A team-scoped key gets its team's cost series only.", [],
            Responses(("200", Content("The exposition page", ("text/plain", String())))), "operations"),
        ["/healthz"] = Get("Liveness", "ok while the process serves requests.", [],
            Responses(("200", Content("ok", ("text/plain", String())))), "operations"),
        [Path] = Get("This document", "The OpenAPI 3.1 document of the HTTP API.", [],
            Responses(("200", Content("The document", (Json, new JsonObject { ["type"] = "object" })))), "operations"),
    };

    private static JsonObject Schemas() => new()
    {
        ["Problem"] = Object("RFC 7807 problem details",
            [("type", String()), ("title", String()), ("status", Integer()), ("detail", String("What was wrong, naming the parameter or field")), ("traceId", String())],
            "title", "status"),
        ["Money"] = new JsonObject
        {
            ["type"] = "string",
            ["pattern"] = "^-?[0-9]+\\.[0-9]{9}$",
            ["description"] = "Dollars (or dollars per hour), exact to the nano-dollar",
            ["examples"] = new JsonArray("495.360000000"),
        },
        ["Event"] = Object("A lifecycle or usage event (fields per type in docs/api.md)",
            [("type", Enum("node_started", "node_stopped", "capacity_changed", "price_changed", "workload_started", "workload_stopped",
                "gpu_allocated", "gpu_released", "cpu_allocated", "bytes_transferred", "storage_changed", "work_counter")), ("time", Time())],
            "type", "time"),
        ["EventsAccepted"] = Object("", [("accepted", Integer())], "accepted"),
        ["Costs"] = Object("GET /api/v1/costs",
            [
                ("from", Time()), ("to", Time()), ("by", Array(String())), ("step", Nullable(String("e.g. 1h"))),
                ("rows", Array(Object("", [("keys", new JsonObject { ["type"] = "object", ["additionalProperties"] = String() }), ("bucket", Nullable(Time())),
                    ("cost_usd", Ref("Money")), ("idle_usd", Ref("Money")), ("gpu_hours", Number()), ("gpu_seconds", Number())],
                    "keys", "bucket", "cost_usd", "idle_usd", "gpu_hours", "gpu_seconds"))),
                ("total_usd", Ref("Money")), ("idle_usd", Ref("Money")), ("gpu_hours", Number()),
            ],
            "from", "to", "by", "step", "rows", "total_usd", "idle_usd", "gpu_hours"),
        ["Burn"] = Object("GET /api/v1/burn",
            [
                ("at", Time()), ("total_usd_per_hour", Ref("Money")), ("rated_usd", Ref("Money")),
                ("workloads", Array(Object("", [("workload", String("Empty for idle")), ("name", String()), ("team", String()), ("user", String()),
                    ("clouds", String("Comma-separated")), ("usd_per_hour", Ref("Money")), ("total_usd", Ref("Money"))],
                    "workload", "name", "team", "user", "clouds", "usd_per_hour", "total_usd"))),
                ("clouds", Array(Object("", [("cloud", String()), ("usd_per_hour", Ref("Money")), ("total_usd", Ref("Money"))], "cloud", "usd_per_hour", "total_usd"))),
            ],
            "at", "total_usd_per_hour", "rated_usd", "workloads", "clouds"),
        ["WorkloadSummary"] = Object("A workload with its current burn rate and its cost",
            [
                ("id", String()), ("name", String()), ("orchestrator", String("skypilot, metaflow, slurm, kubernetes, manual")),
                ("team", String()), ("project", String()), ("user", String()), ("model", String()),
                ("clouds", Array(String())), ("started", Time()), ("ended", Nullable(Time())), ("state", Enum("running", "ended")),
                ("usd_per_hour", Ref("Money")), ("total_usd", Ref("Money")), ("estimate_usd_per_hour", Nullable(Ref("Money"))),
            ],
            s_summaryFields),
        ["WorkloadList"] = Object("GET /api/v1/workloads",
            [("at", Time()), ("from", Time()), ("to", Time()), ("count", Integer()), ("workloads", Array(Ref("WorkloadSummary")))],
            "at", "from", "to", "count", "workloads"),
        ["WorkloadDetail"] = new JsonObject
        {
            ["allOf"] = new JsonArray(Ref("WorkloadSummary"), Object("GET /api/v1/workloads/{id}: total_usd is the timeline's sum",
                [
                    ("at", Time()),
                    ("timeline", Object("Cost per step over [from, to); every step present, zero where nothing was booked",
                        [("from", Time()), ("to", Time()), ("step", String()),
                         ("points", Array(Object("", [("at", Time()), ("cost_usd", Ref("Money")), ("gpu_hours", Number())], "at", "cost_usd", "gpu_hours")))],
                        "from", "to", "step", "points")),
                    ("gpus", Array(Object("A GPU it holds now (empty once ended)",
                        [("node", String()), ("gpu_index", Integer()), ("gpu_type", String()), ("cloud", String()), ("region", String()),
                         ("instance_type", String()), ("capacity_type", Enum("on_demand", "spot", "reserved")),
                         ("share", String("whole, mig:3g.40gb, shared:1/2")), ("share_fraction", Number())],
                        "node", "gpu_index", "gpu_type", "cloud", "region", "instance_type", "capacity_type", "share", "share_fraction"))),
                    ("nodes", Array(Object("What each node (or volume) it used cost in the range",
                        [("node", String()), ("cloud", String()), ("gpu_type", String()), ("cost_usd", Ref("Money")), ("gpu_hours", Number())],
                        "node", "cloud", "gpu_type", "cost_usd", "gpu_hours"))),
                    ("work", Array(Object("Cost per unit of work, per work counter",
                        [("metric", String("tokens, steps, samples, ...")), ("total", Number("Increase over the range")),
                         ("usd_per_unit", Nullable(Ref("Money"))), ("usd_per_million", Nullable(Ref("Money")))],
                        "metric", "total", "usd_per_unit", "usd_per_million"))),
                    ("estimate", Object("Launch-time estimate against what the ledger holds",
                        [("estimate_usd_per_hour", Nullable(Ref("Money"))), ("actual_usd_per_hour", Nullable(Ref("Money"))),
                         ("current_usd_per_hour", Ref("Money")), ("ratio", Nullable(Number("actual / estimate")))],
                        "estimate_usd_per_hour", "actual_usd_per_hour", "current_usd_per_hour", "ratio")),
                    ("alerts", Array(Ref("Alert"))),
                ],
                "at", "timeline", "gpus", "nodes", "work", "estimate", "alerts")),
        },
        ["FleetCounts"] = Object("GPU counts and rates",
            [("gpus", Integer()), ("allocated_gpus", Integer()), ("idle_gpus", Integer()), ("usd_per_hour", Ref("Money")), ("idle_usd_per_hour", Ref("Money"))],
            "gpus", "allocated_gpus", "idle_gpus", "usd_per_hour", "idle_usd_per_hour"),
        ["Fleet"] = new JsonObject
        {
            ["allOf"] = new JsonArray(Ref("FleetCounts"), Object("GET /api/v1/fleet",
                [
                    ("at", Time()), ("nodes", Integer()),
                    ("groups", Array(FleetGroup(("cloud", String()), ("gpu_type", String()), ("capacity_type", String()), ("team", String())))),
                    ("by_cloud", Array(FleetGroup(("cloud", String())))),
                    ("by_gpu_type", Array(FleetGroup(("gpu_type", String())))),
                    ("by_capacity_type", Array(FleetGroup(("capacity_type", String())))),
                    ("by_team", Array(FleetGroup(("team", String())))),
                ],
                "at", "nodes", "groups", "by_cloud", "by_gpu_type", "by_capacity_type", "by_team")),
        },
        ["Prices"] = Object("GET /api/v1/prices",
            [
                ("at", Time()), ("count", Integer()),
                ("prices", Array(Object("",
                    [("cloud", String()), ("region", String()), ("zone", String()), ("instance_type", String()),
                     ("capacity_type", Enum("on_demand", "spot", "reserved")), ("gpu_count", Integer()), ("gpu_type", String()),
                     ("vcpus", Integer()), ("memory_gib", Number()), ("usd_per_hour", Ref("Money")), ("gpu_usd_per_hour", Ref("Money")),
                     ("effective_from", Time()), ("source", String())],
                    "cloud", "region", "zone", "instance_type", "capacity_type", "gpu_count", "gpu_type", "vcpus", "memory_gib",
                    "usd_per_hour", "gpu_usd_per_hour", "effective_from", "source"))),
            ],
            "at", "count", "prices"),
        ["PriceFeeds"] = Object("GET /api/v1/prices/feeds",
            [
                ("feeds", Array(Object("",
                    [("name", String()), ("kind", Enum("aws_spot", "azure_retail", "gcp_billing", "skypilot")), ("up", new JsonObject { ["type"] = "boolean" }),
                     ("interval_seconds", Integer()), ("last_attempt_at", Nullable(Time())), ("last_success_at", Nullable(Time())),
                     ("last_error", Nullable(String())), ("last_error_at", Nullable(Time())), ("consecutive_failures", Integer()),
                     ("polls", Integer()), ("errors", Integer()), ("prices_held", Integer()), ("savings_plan_prices", Integer()),
                     ("book_changes", Integer()), ("next_poll_at", Nullable(Time()))],
                    "name", "kind", "up", "interval_seconds", "last_attempt_at", "last_success_at", "last_error", "last_error_at",
                    "consecutive_failures", "polls", "errors", "prices_held", "savings_plan_prices", "book_changes", "next_poll_at"))),
            ],
            "feeds"),
        ["Decimal"] = new JsonObject
        {
            ["type"] = "string",
            ["pattern"] = "^-?[0-9]+(\\.[0-9]+)?$",
            ["description"] = "An exact decimal amount as the bill wrote it (FOCUS files carry up to 12 decimals)",
        },
        ["FocusImport"] = Object("What one FOCUS file brought in",
            [
                ("file", String()), ("format", Enum("csv", "parquet")), ("focus_version", Enum("1.0", "1.1", "1.2")),
                ("rows_read", Integer()), ("rows_imported", Integer()), ("rows_skipped", Integer()),
                ("period_start", Time()), ("period_end", Time()),
                ("providers", Array(Object("", [("provider", String()), ("rows", Integer()), ("billed_cost", Ref("Decimal")), ("effective_cost", Ref("Decimal"))],
                    "provider", "rows", "billed_cost", "effective_cost"))),
                ("quirks", Array(Object("",
                    [("kind", String("null-string, empty-string, case, unknown-value, shifted-value, null-in-non-nullable, not-a-number, unreadable, non-spec-column")),
                     ("column", String()), ("action", Enum("fixed", "kept", "skipped")), ("count", Integer()),
                     ("first_rows", Array(Integer())), ("detail", String())],
                    "kind", "column", "action", "count", "first_rows", "detail"))),
            ],
            "file", "format", "focus_version", "rows_read", "rows_imported", "rows_skipped", "providers", "quirks"),
        ["Reconciliation"] = Object("Estimate vs bill over the billed period (whole UTC days)",
            [
                ("from", Time()), ("to", Time()),
                ("providers", Array(ReconciledGroup("provider"))),
                ("teams", Array(ReconciledGroup("team"))),
                ("matched_resource_days", Integer()),
                ("unmatched_bill", Array(Ref("UnmatchedLines"))),
                ("unmatched_ledger", Array(Ref("UnmatchedLines"))),
                ("credits", Array(Object("Per provider: the config's credits over the period beside the bill's Credit lines",
                    [("provider", String()), ("configured", Ref("Decimal")), ("billed", Ref("Decimal")), ("bill_lines", Integer()),
                     ("missing", Ref("Decimal")), ("descriptions", Array(String()))],
                    "provider", "configured", "billed", "bill_lines", "missing", "descriptions"))),
            ],
            "from", "to", "providers", "teams", "matched_resource_days", "unmatched_bill", "unmatched_ledger", "credits"),
        ["UnmatchedLines"] = Object("Lines of one side with no partner on the other, per provider",
            [("provider", String()), ("count", Integer()), ("billed_cost", Ref("Money")), ("effective_cost", Ref("Money")), ("estimated_cost", Ref("Money")), ("examples", Array(String()))],
            "provider", "count", "billed_cost", "effective_cost", "estimated_cost", "examples"),
        ["FocusImportResult"] = Object("POST /api/v1/billing/focus",
            [("import", Ref("FocusImport")), ("reconciliation", Nullable(Ref("Reconciliation"))),
             ("calibration", Nullable(Object("What the bill taught (null with calibrate=false or nothing to reconcile)",
                [("learned", Array(Ref("CalibrationFactor"))), ("skipped", Array(String("A key not learned, and why")))], "learned", "skipped")))],
            "import", "reconciliation", "calibration"),
        ["CalibrationFactor"] = Object("A learned ratio of the bill's effective cost to Burnrate's estimate",
            [("provider", String()), ("usage", Enum("compute", "network")), ("instance_type", String("Empty for network")),
             ("capacity_type", Enum("on_demand", "spot", "reserved")), ("factor", Ref("Decimal")), ("estimated_cost", Ref("Decimal")),
             ("effective_cost", Ref("Decimal")), ("from", Time()), ("to", Time()), ("learned_at", Time())],
            "provider", "usage", "instance_type", "capacity_type", "factor", "estimated_cost", "effective_cost", "from", "to", "learned_at"),
        ["Calibration"] = Object("GET /api/v1/billing/calibration",
            [("factors", Array(Ref("CalibrationFactor"))),
             ("reconciled_periods", Array(Object("",
                [("provider", String()), ("from", Time()), ("to", Time()), ("estimated_cost", Ref("Decimal")), ("effective_cost", Ref("Decimal")), ("reconciled_at", Time())],
                "provider", "from", "to", "estimated_cost", "effective_cost", "reconciled_at"))),
             ("unspent_commitments_usd_per_hour", new JsonObject { ["type"] = "object", ["additionalProperties"] = Ref("Decimal") })],
            "factors", "reconciled_periods", "unspent_commitments_usd_per_hour"),
        ["Alert"] = Object("An alert pending or firing",
            [("rule", String()), ("fingerprint", String()), ("state", Enum("pending", "firing")), ("starts_at", Time()), ("evidence_at", Time()),
             ("labels", new JsonObject { ["type"] = "object", ["additionalProperties"] = String() }),
             ("annotations", new JsonObject { ["type"] = "object", ["additionalProperties"] = String() })],
            "rule", "fingerprint", "state", "starts_at", "evidence_at", "labels", "annotations"),
        ["Alerts"] = Object("GET /api/v1/alerts", [("rules", Integer()), ("alerts", Array(Ref("Alert")))], "rules", "alerts"),
        ["Connectors"] = Object("GET /api/v1/connectors",
            [
                ("at", Time()),
                ("connectors", Array(Object("",
                    [("name", String()), ("kind", String("slurm")), ("status", Enum("starting", "ok", "failing")),
                     ("last_poll", Nullable(Time())), ("last_success", Nullable(Time())), ("lag_seconds", Nullable(Number("Seconds since the last successful poll"))),
                     ("last_error", Nullable(String())), ("polls", Integer()), ("failures", Integer()), ("last_duration_seconds", Number()),
                     ("events", Integer()), ("tracked", Integer()),
                     ("source", String("What the last poll read, e.g. squeue openapi/v0.0.38 sacct openapi/dbv0.0.38"))],
                    "name", "kind", "status", "last_poll", "last_success", "lag_seconds", "last_error", "polls", "failures",
                    "last_duration_seconds", "events", "tracked", "source"))),
            ],
            "at", "connectors"),
        ["AlertDelivery"] = Object("GET /api/v1/alerts/delivery",
            [
                ("targets", Array(Object("",
                    [("name", String()), ("kind", String()), ("sent", Integer()), ("failed", Integer()), ("retries", Integer()),
                     ("dropped_queue_full", Integer()), ("deduplicated", Integer()), ("queued", Integer()),
                     ("last_error", Nullable(String())), ("last_error_at", Nullable(Time())), ("last_success_at", Nullable(Time()))],
                    "name", "kind", "sent", "failed", "retries", "dropped_queue_full", "deduplicated", "queued"))),
                ("actions_dropped", Integer()),
            ],
            "targets", "actions_dropped"),
    };

    private static readonly string[] s_summaryFields =
        ["id", "name", "orchestrator", "team", "project", "user", "model", "clouds", "started", "ended", "state", "usd_per_hour", "total_usd", "estimate_usd_per_hour"];

    // ---- builders ------------------------------------------------------------------------------------------

    private static JsonObject FocusImportPath()
    {
        var path = Post("Import a provider's bill (FOCUS)",
            "A FOCUS 1.0, 1.1 or 1.2 file, CSV or Parquet (detected from its bytes), as the body. Its lines are stored (the same body, or the same name, again replaces them) "
            + "and compared with the ledger over the billed period. Quirks are fixed or reported with row numbers: docs/billing.md.",
            Body(true, ("text/csv", String()), ("application/vnd.apache.parquet", Binary()), ("application/octet-stream", Binary())),
            Responses(Ok(Ref("FocusImportResult")),
                Problem("400", "Not a FOCUS file, or a mandatory column of its version is missing (detail names it)"),
                Problem("413", "The body is larger than 512 MiB")),
            "billing");
        path["post"]!.AsObject().Insert(3, "parameters", new JsonArray(
            Query("name", "The source's name: uploads with the same name replace each other's lines. Default: the body's SHA-256", String()),
            Query("calibrate", "true (default): learn calibration factors from the bill and apply them to live rates from now on; false: compare only", Enum("true", "false"))));
        return path;
    }

    private static JsonObject ReconciledGroup(string key) => Object("",
        [(key, String()), ("bill_lines", Integer()), ("estimated_cost", Ref("Money")), ("billed_cost", Ref("Decimal")), ("effective_cost", Ref("Decimal")),
         ("effective_vs_estimate", Nullable(String("(effective − estimated) / estimated, exact; -0.08 is 8% under the estimate"))),
         ("billed_vs_estimate", Nullable(String()))],
        key, "bill_lines", "estimated_cost", "billed_cost", "effective_cost", "effective_vs_estimate", "billed_vs_estimate");

    private static JsonObject Get(string summary, string description, JsonObject[] parameters, JsonObject responses, string tag) =>
        new() { ["get"] = Operation(summary, description, parameters, responses, tag) };

    private static JsonObject Post(string summary, string description, JsonObject body, JsonObject responses, string tag)
    {
        var operation = Operation(summary, description, [], responses, tag);
        operation.Remove("parameters");
        operation.Insert(2, "requestBody", body);
        return new JsonObject { ["post"] = operation };
    }

    private static JsonObject Operation(string summary, string description, JsonObject[] parameters, JsonObject responses, string tag) => new()
    {
        ["summary"] = summary,
        ["description"] = description,
        ["tags"] = new JsonArray(tag),
        ["parameters"] = new JsonArray([.. parameters]),
        ["responses"] = responses,
    };

    private static JsonObject Query(string name, string description, JsonObject schema)
    {
        var parameter = new JsonObject { ["name"] = name, ["in"] = "query", ["required"] = false, ["description"] = description, ["schema"] = schema };
        if (schema["type"]?.GetValue<string>() == "array")
        {
            parameter["style"] = "form";
            parameter["explode"] = true;
        }
        return parameter;
    }

    private static JsonObject Body(bool required, params (string MediaType, JsonObject Schema)[] content)
    {
        var media = new JsonObject();
        foreach (var (type, schema) in content)
            media[type] = new JsonObject { ["schema"] = schema };
        return new JsonObject { ["required"] = required, ["content"] = media };
    }

    private static JsonObject Responses(params (string Status, JsonObject Response)[] responses)
    {
        var result = new JsonObject();
        foreach (var (status, response) in responses)
            result[status] = response;
        result["default"] = Content("Any other error (404 for an unknown /api path, 405, 500)", (ProblemJson, Ref("Problem")));
        return result;
    }

    private static (string, JsonObject) Ok(JsonObject schema) => ("200", Content("OK", (Json, schema)));

    private static (string, JsonObject) Problem(string status, string description) => (status, Content(description, (ProblemJson, Ref("Problem"))));

    private static JsonObject Empty(string description) => new() { ["description"] = description };

    private static JsonObject Content(string description, params (string MediaType, JsonObject Schema)[] content)
    {
        var media = new JsonObject();
        foreach (var (type, schema) in content)
            media[type] = new JsonObject { ["schema"] = schema };
        return new JsonObject { ["description"] = description, ["content"] = media };
    }

    private static JsonObject FleetGroup(params (string Name, JsonObject Schema)[] keys) => new()
    {
        ["allOf"] = new JsonArray(Object("", keys, [.. keys.Select(k => k.Name)]), Ref("FleetCounts")),
    };

    private static JsonObject Object(string description, (string Name, JsonObject Schema)[] properties, params string[] required)
    {
        var props = new JsonObject();
        foreach (var (name, schema) in properties)
            props[name] = schema;
        var result = new JsonObject { ["type"] = "object" };
        if (description.Length > 0)
            result["description"] = description;
        if (required.Length > 0)
            result["required"] = new JsonArray([.. required.Select(r => (JsonNode)r)]);
        result["properties"] = props;
        return result;
    }

    private static JsonObject Object(params (string Name, JsonObject Schema)[] properties) => Object("", properties);

    private static JsonObject Ref(string name) => new() { ["$ref"] = "#/components/schemas/" + name };

    private static JsonObject String(string? description = null) => Typed("string", description);

    private static JsonObject Integer() => Typed("integer", null);

    private static JsonObject Number(string? description = null) => Typed("number", description);

    private static JsonObject Time() => new() { ["type"] = "string", ["format"] = "date-time" };

    private static JsonObject Binary() => new() { ["type"] = "string", ["format"] = "binary" };

    private static JsonObject Array(JsonObject items) => new() { ["type"] = "array", ["items"] = items };

    private static JsonObject Enum(params string[] values) => new() { ["type"] = "string", ["enum"] = new JsonArray([.. values.Select(v => (JsonNode)v)]) };

    private static JsonObject Nullable(JsonObject schema) => new() { ["oneOf"] = new JsonArray(schema, new JsonObject { ["type"] = "null" }) };

    private static JsonObject Typed(string type, string? description)
    {
        var result = new JsonObject { ["type"] = type };
        if (description is not null)
            result["description"] = description;
        return result;
    }
}
