using System.Globalization;
using System.Text.Json;
using Burnrate.Configuration;
using Burnrate.Rating;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Burnrate.Server;

/// <summary>
/// <c>GET /api/v1/burn</c>: the burn rate right now ($/hour) per workload and in total, with what each has cost so
/// far. Needs a <see cref="CostPipeline"/> in DI (present when the server rates, as in <c>burnrate demo</c>).
/// Amounts are exact decimal strings.
/// </summary>
public static class BurnEndpoints
{
    public static IEndpointRouteBuilder MapBurnApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/v1/burn", GetBurn).RequireScope(ApiScopes.Read);
        return app;
    }

    private static IResult GetBurn(HttpContext context)
    {
        var pipeline = context.RequestServices.GetService<CostPipeline>();
        if (pipeline is null)
            return ApiJson.NoLiveRating();
        var time = context.RequestServices.GetService<TimeProvider>() ?? TimeProvider.System;
        var burn = pipeline.Burn(time.GetUtcNow());
        if (BurnratePrincipal.Of(context).Team is { } team)
            burn = OfTeam(burn, team);
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteString("at", burn.At.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", CultureInfo.InvariantCulture));
            json.WriteString("total_usd_per_hour", ApiJson.Usd(burn.Total));
            json.WriteString("rated_usd", ApiJson.Usd(burn.RatedSoFar));
            json.WriteStartArray("workloads");
            foreach (var w in burn.Workloads)
            {
                json.WriteStartObject();
                json.WriteString("workload", w.WorkloadId);
                json.WriteString("name", w.Name);
                json.WriteString("team", w.Team);
                json.WriteString("user", w.User);
                json.WriteString("clouds", w.Providers);
                json.WriteString("usd_per_hour", ApiJson.Usd(w.Rate));
                json.WriteString("total_usd", ApiJson.Usd(w.Total));
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteStartArray("clouds");
            foreach (var p in burn.Providers)
            {
                json.WriteStartObject();
                json.WriteString("cloud", p.Provider);
                json.WriteString("usd_per_hour", ApiJson.Usd(p.Rate));
                json.WriteString("total_usd", ApiJson.Usd(p.Total));
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        return Results.Bytes(stream.ToArray(), "application/json; charset=utf-8");
    }

    /// <summary>
    /// What a team-scoped key sees: its team's workloads, totals summed from them, and no per-cloud split (the live view
    /// keeps cloud totals for the whole fleet only). Idle capacity belongs to no workload and is left out.
    /// </summary>
    private static BurnSummary OfTeam(BurnSummary burn, string team)
    {
        var workloads = burn.Workloads.Where(w => w.WorkloadId.Length > 0 && string.Equals(w.Team, team, StringComparison.Ordinal)).ToList();
        return burn with
        {
            Total = new HourlyRate(workloads.Sum(w => w.Rate.NanosPerHour)),
            RatedSoFar = new Money(workloads.Sum(w => w.Total.Nanos)),
            Workloads = workloads,
            Providers = [],
        };
    }

}
