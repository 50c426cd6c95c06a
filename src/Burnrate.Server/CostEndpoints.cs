using Burnrate.Configuration;
using Burnrate.Reporting;
using Burnrate.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Burnrate.Server;

/// <summary>
/// <c>GET /api/v1/costs</c>: the ledger summed by dimensions over a range. Query parameters: <c>by</c>
/// (comma-separated dimensions), <c>from</c> and <c>to</c> (RFC 3339 or relative; default <c>-7d</c> and
/// <c>now</c>), <c>step</c> (bucket width, e.g. <c>1h</c>), and repeated <c>filter=DIM:V1|V2</c>.
/// Answers with <see cref="CostReportFormats.WriteApiJson"/>; bad queries get a 400 problem details document.
/// </summary>
public static class CostEndpoints
{
    /// <summary>The most buckets one query may ask for (range divided by step).</summary>
    public const int MaxBuckets = 100_000;

    private static HashSet<string> AcceptedParameters { get; } = new(StringComparer.OrdinalIgnoreCase) { "by", "from", "to", "step", "filter" };

    /// <summary>Maps the cost API. Needs an <see cref="ICostStore"/> in DI; uses a <see cref="TimeProvider"/> when there is one.</summary>
    public static IEndpointRouteBuilder MapCostApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/v1/costs", GetCostsAsync).RequireScope(ApiScopes.Read);
        return app;
    }

    private static async Task<IResult> GetCostsAsync(HttpContext context, CancellationToken cancellationToken)
    {
        var time = context.RequestServices.GetService<TimeProvider>() ?? TimeProvider.System;
        if (!TryParseQuery(context.Request.Query, time.GetUtcNow(), out var query, out var error))
            return Results.Problem(detail: error, statusCode: StatusCodes.Status400BadRequest, title: "Invalid cost query");

        // A team-scoped key reads its team's costs only: its team becomes a filter; a filter naming another team is refused.
        var principal = BurnratePrincipal.Of(context);
        if (principal.Team is { } team)
        {
            if (query.Filters.TryGetValue(CostDimension.Team, out var asked) && principal.RefuseOtherTeams(asked) is { } refused)
                return refused;
            var filters = new Dictionary<CostDimension, IReadOnlyList<string>>(query.Filters) { [CostDimension.Team] = [team] };
            query = query with { Filters = filters };
        }
        var store = context.RequestServices.GetRequiredService<ICostStore>();
        var report = await CostReport.RunAsync(store, query, cancellationToken).ConfigureAwait(false);
        return Results.Text(CostReportFormats.ToApiJson(report), "application/json; charset=utf-8");
    }

    /// <summary>Turns the query string of <c>GET /api/v1/costs</c> into a <see cref="CostQuery"/>, or says what is wrong.</summary>
    public static bool TryParseQuery(IQueryCollection parameters, DateTimeOffset now, out CostQuery query, out string? error)
    {
        query = new CostQuery { From = now, To = now };
        error = null;
        var unknown = parameters.Keys.FirstOrDefault(k => !AcceptedParameters.Contains(k));
        if (unknown is not null)
        {
            error = $"unknown query parameter '{unknown}'; accepted: by, from, to, step, filter";
            return false;
        }
        if (!CostQueryText.TryParseDimensions(string.Join(',', parameters["by"].ToArray()), out var by, out error))
        {
            error = "by: " + error;
            return false;
        }
        var fromText = parameters["from"].LastOrDefault() ?? "-7d";
        var toText = parameters["to"].LastOrDefault() ?? "now";
        if (!TimeExpression.TryParse(fromText, now, out var from))
        {
            error = $"from: '{fromText}' is not a time (RFC 3339 like 2025-06-01T00:00:00Z, or relative like -15m, -7d, now)";
            return false;
        }
        if (!TimeExpression.TryParse(toText, now, out var to))
        {
            error = $"to: '{toText}' is not a time (RFC 3339 like 2025-06-01T00:00:00Z, or relative like -15m, -7d, now)";
            return false;
        }
        if (from >= to)
        {
            error = $"from ({TimeExpression.Format(from)}) must be before to ({TimeExpression.Format(to)})";
            return false;
        }
        TimeSpan? step = null;
        if (parameters["step"].LastOrDefault() is { } stepText)
        {
            if (!TimeExpression.TryParseDuration(stepText, out var s) || s.Ticks % TimeSpan.TicksPerMinute != 0)
            {
                error = $"step: '{stepText}' is not a whole number of minutes (e.g. 15m, 1h, 1d)";
                return false;
            }
            if ((to - from) / s > MaxBuckets)
            {
                error = $"step: {stepText} over this range makes more than {MaxBuckets} buckets";
                return false;
            }
            step = s;
        }
        var filters = new Dictionary<CostDimension, List<string>>();
        foreach (var filter in parameters["filter"])
        {
            if (!CostQueryText.TryAddFilter(filter, ':', '|', filters, out error))
            {
                error = "filter: " + error;
                return false;
            }
        }
        query = new CostQuery { From = from, To = to, By = by, Step = step, Filters = CostQueryText.Freeze(filters) };
        return true;
    }
}
