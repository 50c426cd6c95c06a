using Burnrate.Configuration;
using Burnrate.Pricing;
using Burnrate.Rating;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Burnrate.Server;

/// <summary>
/// <c>GET /api/v1/prices</c>: the price book in force, the same entries as <c>burnrate prices</c> (price events the
/// server received included). Filters: <c>gpu</c> (GPU model prefix), <c>cloud</c>, <c>region</c>, <c>capacity</c>,
/// and <c>at</c> (the instant, default now). Reads the <see cref="IPriceBook"/> in DI, else the rating pipeline's.
/// </summary>
public static class PriceEndpoints
{
    private const string Title = "Invalid prices query";

    /// <summary>Maps <c>GET /api/v1/prices</c>.</summary>
    public static IEndpointRouteBuilder MapPriceApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/v1/prices", GetPrices).RequireScope(ApiScopes.Read);
        return app;
    }

    private static IResult GetPrices(HttpContext context)
    {
        var query = context.Request.Query;
        if (ApiJson.RefuseUnknownParameters(query, Title, "gpu", "cloud", "region", "capacity", "at") is { } unknown)
            return unknown;
        var book = context.RequestServices.GetService<IPriceBook>() ?? context.RequestServices.GetService<CostPipeline>()?.Prices;
        if (book is null)
            return Results.Problem(detail: "this server has no price book (no rating pipeline is running)", statusCode: StatusCodes.Status503ServiceUnavailable, title: "No price book");
        var now = (context.RequestServices.GetService<TimeProvider>() ?? TimeProvider.System).GetUtcNow();
        if (!ApiJson.TryTime(query, "at", now, Title, out var atParam, out var problem))
            return problem!;
        CapacityType? capacity = null;
        if (query["capacity"].LastOrDefault() is { } capacityText)
        {
            if (!CapacityTypes.TryParse(capacityText, out var c))
                return ApiJson.BadRequest(Title, $"capacity: '{capacityText}' is not one of on_demand, spot, reserved");
            capacity = c;
        }
        var at = atParam ?? now;
        var prices = PriceSelection.Select(book.InForce(at), query["gpu"].LastOrDefault(), query["cloud"].LastOrDefault(), query["region"].LastOrDefault(), capacity);
        return ApiJson.Document(json =>
        {
            json.WriteStartObject();
            json.WriteString("at", ApiJson.Time(at));
            json.WriteNumber("count", prices.Count);
            json.WriteStartArray("prices");
            foreach (var p in prices)
            {
                json.WriteStartObject();
                json.WriteString("cloud", p.Provider);
                json.WriteString("region", p.Region);
                json.WriteString("zone", p.Zone);
                json.WriteString("instance_type", p.InstanceType);
                json.WriteString("capacity_type", p.Capacity.ToName());
                json.WriteNumber("gpu_count", p.GpuCount);
                json.WriteString("gpu_type", p.GpuModel);
                json.WriteNumber("vcpus", p.VCpus);
                json.WriteNumber("memory_gib", p.MemoryGiB);
                json.WriteString("usd_per_hour", ApiJson.Usd(p.PricePerHour));
                json.WriteString("gpu_usd_per_hour", ApiJson.Usd(p.GpuPricePerHour));
                json.WriteString("effective_from", ApiJson.Time(p.EffectiveFrom));
                json.WriteString("source", p.Source);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        });
    }
}
