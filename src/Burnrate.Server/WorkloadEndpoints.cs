using System.Text.Json;
using Burnrate.Alerting;
using Burnrate.Configuration;
using Burnrate.Pricing;
using Burnrate.Rating;
using Burnrate.Reporting;
using Burnrate.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Burnrate.Server;

/// <summary>
/// <c>GET /api/v1/workloads</c> (every workload with its current burn rate and its cost so far, sorted by burn rate) and
/// <c>GET /api/v1/workloads/{id}</c> (one workload: its cost timeline, GPUs, nodes, cost per unit of work, estimate
/// against actual, and its alerts). Workloads come from the ledger's workload table and, when the server rates live
/// input, the rating engine; current rates from the <see cref="CostPipeline"/>. The id is the rest of the path, raw
/// (<c>/api/v1/workloads/metaflow:TrainFlow/1234/train</c>) or percent-encoded.
/// </summary>
public static class WorkloadEndpoints
{
    /// <summary>The most points a timeline gets when no <c>step</c> is given.</summary>
    public const int DefaultMaxPoints = 500;

    private const string ListTitle = "Invalid workloads query";
    private const string DetailTitle = "Invalid workload query";

    /// <summary>The steps a timeline picks from by default, finest first.</summary>
    private static readonly TimeSpan[] s_defaultSteps =
    [
        TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(15), TimeSpan.FromHours(1),
        TimeSpan.FromHours(6), TimeSpan.FromDays(1), TimeSpan.FromDays(7),
    ];

    /// <summary>Maps the list and the detail.</summary>
    public static IEndpointRouteBuilder MapWorkloadApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/v1/workloads", ListAsync).RequireScope(ApiScopes.Read);
        app.MapGet("/api/v1/workloads/{**id}", DetailAsync).RequireScope(ApiScopes.Read);
        return app;
    }

    /// <summary>The timeline step used when none is asked for: the finest of 1m, 5m, 15m, 1h, 6h, 1d, 7d giving at most <see cref="DefaultMaxPoints"/> points.</summary>
    public static TimeSpan DefaultStep(TimeSpan span)
    {
        foreach (var step in s_defaultSteps)
        {
            if (span.Ticks <= step.Ticks * DefaultMaxPoints)
                return step;
        }
        return s_defaultSteps[^1];
    }

    private static async Task<IResult> ListAsync(HttpContext context, CancellationToken cancellationToken)
    {
        var query = context.Request.Query;
        if (ApiJson.RefuseUnknownParameters(query, ListTitle, "team", "project", "user", "state", "from", "to") is { } unknown)
            return unknown;
        var now = Now(context);
        if (!ApiJson.TryTime(query, "from", now, ListTitle, out var fromParam, out var problem) || !ApiJson.TryTime(query, "to", now, ListTitle, out var toParam, out problem))
            return problem!;
        var state = query["state"].LastOrDefault();
        if (state is not (null or "running" or "ended"))
            return ApiJson.BadRequest(ListTitle, $"state: '{state}' is not one of running, ended");

        var principal = BurnratePrincipal.Of(context);
        if (principal.RefuseOtherTeams(query["team"].OfType<string>()) is { } refused)
            return refused;

        var store = context.RequestServices.GetRequiredService<ICostStore>();
        var view = await WorkloadView.LoadAsync(context, store, now, cancellationToken).ConfigureAwait(false);
        var span = await store.GetLedgerSpanAsync(cancellationToken).ConfigureAwait(false);
        var from = fromParam ?? span?.First ?? now;
        var to = toParam ?? Max(now, span is { } s ? s.Last.AddMinutes(1) : now);
        if (from >= to)
            return ApiJson.BadRequest(ListTitle, $"from ({ApiJson.Time(from)}) must be before to ({ApiJson.Time(to)})");

        var rows = await store.QueryCostsAsync(new CostQuery { From = from, To = to, By = [CostDimension.Workload, CostDimension.Cloud] }, cancellationToken).ConfigureAwait(false);
        var totals = new Dictionary<string, long>(StringComparer.Ordinal);
        var clouds = new Dictionary<string, SortedSet<string>>(StringComparer.Ordinal);
        foreach (var row in rows)
        {
            totals[row.Keys[0]] = totals.GetValueOrDefault(row.Keys[0]) + row.Cost.Nanos;
            if (row.Keys[1].Length > 0)
                CloudsOf(clouds, row.Keys[0]).Add(row.Keys[1]);
        }
        foreach (var (id, cloud) in view.LiveClouds)
            CloudsOf(clouds, id).UnionWith(cloud);

        var team = query["team"].LastOrDefault();
        var project = query["project"].LastOrDefault();
        var user = query["user"].LastOrDefault();
        var selected = view.Records.Values
            .Where(r => principal.Sees(r.Workload.Team))
            .Where(r => team is null || r.Workload.Team.Equals(team, StringComparison.OrdinalIgnoreCase))
            .Where(r => project is null || r.Workload.Project.Equals(project, StringComparison.OrdinalIgnoreCase))
            .Where(r => user is null || r.Workload.User.Equals(user, StringComparison.OrdinalIgnoreCase))
            .Where(r => state is null || (state == "running") == (r.Ended is null))
            .Where(r => r.Started < to && (r.Ended is not { } ended || ended > from))
            .OrderByDescending(r => view.Rate(r.Workload.Id).NanosPerHour)
            .ThenByDescending(r => totals.GetValueOrDefault(r.Workload.Id))
            .ThenBy(r => r.Workload.Id, StringComparer.Ordinal)
            .ToList();

        return ApiJson.Document(json =>
        {
            json.WriteStartObject();
            json.WriteString("at", ApiJson.Time(now));
            json.WriteString("from", ApiJson.Time(from));
            json.WriteString("to", ApiJson.Time(to));
            json.WriteNumber("count", selected.Count);
            json.WriteStartArray("workloads");
            foreach (var r in selected)
            {
                json.WriteStartObject();
                WriteSummary(json, r, view.Rate(r.Workload.Id), new Money(totals.GetValueOrDefault(r.Workload.Id)), clouds.GetValueOrDefault(r.Workload.Id));
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        });
    }

    /// <summary>Sums each group of report rows into one row with the given keys and bucket.</summary>
    private static List<CostReportRow> Fold<TKey>(IEnumerable<IGrouping<TKey, CostReportRow>> groups, Func<IGrouping<TKey, CostReportRow>, (string[] Keys, DateTimeOffset? Bucket)> identity) =>
        [.. groups.Select(g =>
        {
            var (keys, bucket) = identity(g);
            return new CostReportRow(keys, bucket, new Money(g.Sum(r => r.Cost.Nanos)), new Money(g.Sum(r => r.IdleCost.Nanos)), g.Sum(r => r.GpuSeconds));
        })];

    private static async Task<IResult> DetailAsync(HttpContext context, string? id, CancellationToken cancellationToken)
    {
        // A raw id arrives decoded except for %2F; an encoded one arrives with %2F (and any %25) still encoded.
        id = Uri.UnescapeDataString(id ?? "");
        var query = context.Request.Query;
        if (ApiJson.RefuseUnknownParameters(query, DetailTitle, "step", "from", "to") is { } unknown)
            return unknown;
        var now = Now(context);
        if (!ApiJson.TryTime(query, "from", now, DetailTitle, out var fromParam, out var problem) || !ApiJson.TryTime(query, "to", now, DetailTitle, out var toParam, out problem))
            return problem!;
        TimeSpan? stepParam = null;
        if (query["step"].LastOrDefault() is { } stepText)
        {
            if (!TimeExpression.TryParseDuration(stepText, out var s) || s.Ticks % TimeSpan.TicksPerMinute != 0)
                return ApiJson.BadRequest(DetailTitle, $"step: '{stepText}' is not a whole number of minutes (e.g. 1m, 1h, 1d)");
            stepParam = s;
        }

        var store = context.RequestServices.GetRequiredService<ICostStore>();
        var view = await WorkloadView.LoadAsync(context, store, now, cancellationToken).ConfigureAwait(false);
        // Another team's workload is unknown to a team-scoped key: 404 as for a missing id, so ids do not leak.
        if (id.Length == 0 || !view.Records.TryGetValue(id, out var record) || !BurnratePrincipal.Of(context).Sees(record.Workload.Team))
        {
            return Results.Problem(detail: $"no workload '{id}' is known (GET /api/v1/workloads lists them)",
                statusCode: StatusCodes.Status404NotFound, title: "Unknown workload");
        }

        var span = await store.GetLedgerSpanAsync(cancellationToken).ConfigureAwait(false);
        var ratedThrough = context.RequestServices.GetService<CostPipeline>()?.RatedThrough ?? (span is { } sp ? sp.Last.AddMinutes(1) : record.Started);
        var end = record.Ended ?? now;
        var step = stepParam ?? DefaultStep(Max(end - record.Started, TimeSpan.FromMinutes(1)));
        var from = fromParam ?? Floor(record.Started, step);
        var to = toParam ?? Ceiling(Max(end, from.AddMinutes(1)), step);
        if (from >= to)
            return ApiJson.BadRequest(DetailTitle, $"from ({ApiJson.Time(from)}) must be before to ({ApiJson.Time(to)})");
        if ((to - from) / step > CostEndpoints.MaxBuckets)
            return ApiJson.BadRequest(DetailTitle, $"step: {TimeExpression.FormatDuration(step)} over this range makes more than {CostEndpoints.MaxBuckets} points");

        var filter = new Dictionary<CostDimension, IReadOnlyList<string>> { [CostDimension.Workload] = [id] };
        // One pass over the ledger gives both the timeline (summed over nodes) and the nodes (summed over time).
        var cells = await store.QueryCostsAsync(new CostQuery { From = from, To = to, Step = step, By = [CostDimension.Resource, CostDimension.Cloud, CostDimension.Gpu], Filters = filter }, cancellationToken).ConfigureAwait(false);
        var timeline = Fold(cells.GroupBy(r => r.BucketStart), g => ([], g.Key));
        var nodes = Fold(cells.GroupBy(r => (r.Keys[0], r.Keys[1], r.Keys[2])), g => ([g.Key.Item1, g.Key.Item2, g.Key.Item3], null));
        var work = await store.GetWorkTotalsAsync(from, to, [id], cancellationToken).ConfigureAwait(false);
        var total = new Money(timeline.Sum(r => r.Cost.Nanos));
        var clouds = new SortedSet<string>(nodes.Select(n => n.Keys[1]).Where(c => c.Length > 0), StringComparer.Ordinal);
        if (view.LiveClouds.TryGetValue(id, out var live))
            clouds.UnionWith(live);
        var rate = view.Rate(id);
        var alerts = (context.RequestServices.GetService<AlertEngine>()?.Current() ?? [])
            .Where(a => a.Labels.TryGetValue("workload", out var w) && w == id)
            .OrderBy(a => a.StartsAt).ThenBy(a => a.Rule, StringComparer.Ordinal)
            .ToList();

        // Actual $/h: what the ledger holds for the rated part of its life within the range, per hour of that part.
        var ratedFrom = Max(record.Started, from);
        var ratedTo = Min(Min(end, ratedThrough), to);
        decimal? actual = ratedTo > ratedFrom ? total.Dollars * 3600m / (decimal)(ratedTo - ratedFrom).TotalSeconds : null;

        return ApiJson.Document(json =>
        {
            json.WriteStartObject();
            WriteSummary(json, record, rate, total, clouds);
            json.WriteString("at", ApiJson.Time(now));

            json.WriteStartObject("timeline");
            json.WriteString("from", ApiJson.Time(from));
            json.WriteString("to", ApiJson.Time(to));
            json.WriteString("step", TimeExpression.FormatDuration(step));
            json.WriteStartArray("points");
            var byBucket = timeline.Where(r => r.BucketStart is not null).ToDictionary(r => r.BucketStart!.Value);
            for (var t = from; t < to; t += step)
            {
                byBucket.TryGetValue(t, out var row);
                json.WriteStartObject();
                json.WriteString("at", ApiJson.Time(t));
                json.WriteString("cost_usd", ApiJson.Usd(row?.Cost ?? Money.Zero));
                json.WriteNumber("gpu_hours", CostReport.GpuHours(row?.GpuSeconds ?? 0m));
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();

            json.WriteStartArray("gpus");
            foreach (var (node, gpu, holder) in view.GpusOf(id))
            {
                json.WriteStartObject();
                json.WriteString("node", node.Spec.Id);
                json.WriteNumber("gpu_index", gpu.Index);
                json.WriteString("gpu_type", node.Spec.GpuModel);
                json.WriteString("cloud", node.Spec.Provider);
                json.WriteString("region", node.Spec.Region);
                json.WriteString("instance_type", node.Spec.InstanceType);
                json.WriteString("capacity_type", node.Capacity.ToName());
                json.WriteString("share", holder.Share.ToString());
                json.WriteNumber("share_fraction", Math.Round((decimal)holder.Share.Numerator / holder.Share.Denominator, 6));
                json.WriteEndObject();
            }
            json.WriteEndArray();

            json.WriteStartArray("nodes");
            foreach (var n in nodes.OrderByDescending(n => n.Cost.Nanos).ThenBy(n => n.Keys[0], StringComparer.Ordinal))
            {
                json.WriteStartObject();
                json.WriteString("node", n.Keys[0]);
                json.WriteString("cloud", n.Keys[1]);
                json.WriteString("gpu_type", n.Keys[2]);
                json.WriteString("cost_usd", ApiJson.Usd(n.Cost));
                json.WriteNumber("gpu_hours", CostReport.GpuHours(n.GpuSeconds));
                json.WriteEndObject();
            }
            json.WriteEndArray();

            json.WriteStartArray("work");
            foreach (var w in work)
            {
                json.WriteStartObject();
                json.WriteString("metric", w.Metric);
                json.WriteNumber("total", w.Increase);
                if (w.Increase > 0 && w.Increase < (double)decimal.MaxValue)
                {
                    var units = (decimal)w.Increase;
                    json.WriteString("usd_per_unit", ApiJson.Usd(total.Dollars / units));
                    json.WriteString("usd_per_million", ApiJson.Usd(total.Dollars * 1_000_000m / units));
                }
                else
                {
                    json.WriteNull("usd_per_unit");
                    json.WriteNull("usd_per_million");
                }
                json.WriteEndObject();
            }
            json.WriteEndArray();

            json.WriteStartObject("estimate");
            if (record.EstimatePerHour is { } estimate)
                json.WriteString("estimate_usd_per_hour", ApiJson.Usd(estimate));
            else
                json.WriteNull("estimate_usd_per_hour");
            if (actual is { } a)
                json.WriteString("actual_usd_per_hour", ApiJson.Usd(a));
            else
                json.WriteNull("actual_usd_per_hour");
            json.WriteString("current_usd_per_hour", ApiJson.Usd(rate));
            if (actual is { } ratioOf && record.EstimatePerHour is { } over && over > 0)
                json.WriteNumber("ratio", decimal.Round(ratioOf / over, 4, MidpointRounding.AwayFromZero));
            else
                json.WriteNull("ratio");
            json.WriteEndObject();

            json.WriteStartArray("alerts");
            foreach (var alert in alerts)
                AlertEndpoints.WriteAlert(json, alert);
            json.WriteEndArray();
            json.WriteEndObject();
        });
    }

    private static void WriteSummary(Utf8JsonWriter json, WorkloadRecord r, HourlyRate rate, Money total, IEnumerable<string>? clouds)
    {
        var w = r.Workload;
        json.WriteString("id", w.Id);
        json.WriteString("name", w.Name);
        json.WriteString("orchestrator", w.Orchestrator);
        json.WriteString("team", w.Team);
        json.WriteString("project", w.Project);
        json.WriteString("user", w.User);
        json.WriteString("model", w.Model);
        json.WriteStartArray("clouds");
        foreach (var c in clouds ?? [])
            json.WriteStringValue(c);
        json.WriteEndArray();
        json.WriteString("started", ApiJson.Time(r.Started));
        ApiJson.WriteTimeOrNull(json, "ended", r.Ended);
        json.WriteString("state", r.Ended is null ? "running" : "ended");
        json.WriteString("usd_per_hour", ApiJson.Usd(rate));
        json.WriteString("total_usd", ApiJson.Usd(total));
        if (r.EstimatePerHour is { } estimate)
            json.WriteString("estimate_usd_per_hour", ApiJson.Usd(estimate));
        else
            json.WriteNull("estimate_usd_per_hour");
    }

    private static SortedSet<string> CloudsOf(Dictionary<string, SortedSet<string>> clouds, string id)
    {
        if (!clouds.TryGetValue(id, out var set))
            clouds[id] = set = new SortedSet<string>(StringComparer.Ordinal);
        return set;
    }

    private static DateTimeOffset Now(HttpContext context) =>
        (context.RequestServices.GetService<TimeProvider>() ?? TimeProvider.System).GetUtcNow();

    private static DateTimeOffset Floor(DateTimeOffset t, TimeSpan step) => new(t.UtcTicks - t.UtcTicks % step.Ticks, TimeSpan.Zero);

    private static DateTimeOffset Ceiling(DateTimeOffset t, TimeSpan step) =>
        t.UtcTicks % step.Ticks == 0 ? t.ToUniversalTime() : Floor(t, step) + step;

    private static DateTimeOffset Max(DateTimeOffset a, DateTimeOffset b) => a > b ? a : b;

    private static DateTimeOffset Min(DateTimeOffset a, DateTimeOffset b) => a < b ? a : b;

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    /// <summary>The workloads known (ledger table, overlaid by the engine's fresher view) and what is burning now.</summary>
    private sealed class WorkloadView
    {
        private readonly Dictionary<string, long> _rates = new(StringComparer.Ordinal);

        public Dictionary<string, WorkloadRecord> Records { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, SortedSet<string>> LiveClouds { get; } = new(StringComparer.Ordinal);

        public LiveSnapshot? Live { get; private set; }

        public HourlyRate Rate(string id) => new(_rates.GetValueOrDefault(id));

        public IEnumerable<(NodeSnapshot Node, GpuSnapshot Gpu, GpuHolder Holder)> GpusOf(string id)
        {
            foreach (var node in Live?.Nodes ?? [])
            {
                foreach (var gpu in node.Gpus)
                {
                    foreach (var holder in gpu.Holders)
                    {
                        if (holder.WorkloadId == id)
                            yield return (node, gpu, holder);
                    }
                }
            }
        }

        public static async Task<WorkloadView> LoadAsync(HttpContext context, ICostStore store, DateTimeOffset now, CancellationToken cancellationToken)
        {
            var view = new WorkloadView();
            foreach (var r in await store.GetWorkloadsAsync(null, cancellationToken).ConfigureAwait(false))
                view.Records[r.Workload.Id] = r;
            if (context.RequestServices.GetService<CostPipeline>() is not { } pipeline)
                return view;
            var live = pipeline.Snapshot(now);
            view.Live = live;
            foreach (var w in live.Workloads)
            {
                if (w.Info.Id.Length > 0)
                    view.Records[w.Info.Id] = new WorkloadRecord(w.Info, w.Started, w.Stopped, w.EstimatePerHour);
            }
            foreach (var line in live.Lines)
            {
                if (line.WorkloadId.Length == 0)
                    continue;
                view._rates[line.WorkloadId] = view._rates.GetValueOrDefault(line.WorkloadId) + line.Rate.NanosPerHour;
                if (line.Dimensions.Provider.Length > 0)
                    CloudsOf(view.LiveClouds, line.WorkloadId).Add(line.Dimensions.Provider);
            }
            return view;
        }
    }
}
