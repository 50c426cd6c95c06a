using System.Buffers;
using Burnrate.Protocols.Events;
using Burnrate.Rating;
using Burnrate.Telemetry;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Net.Http.Headers;

namespace Burnrate.Server;

/// <summary>
/// <c>POST /api/v1/events</c>: exact lifecycle events from orchestrator hooks and scripts (schema in docs/api.md).
/// The whole body is decoded before anything is applied, so a request with one invalid event changes nothing. Valid
/// events go to the <see cref="CostPipeline"/> in DI and are rated when their minute closes.
/// </summary>
/// <remarks>
/// Answers 202 <c>{"accepted": N}</c>; 400 (invalid event, the problem names the event index and field), 413 (body
/// above <see cref="MaxBodyBytes"/>), 415 (not <c>application/json</c>) and 503 (no rating pipeline) as RFC 7807
/// problem details. Events are held in memory until rated: there is no write-ahead log yet.
/// </remarks>
public static class EventEndpoints
{
    /// <summary>The largest body accepted (1 MiB): a hook sends a few events, a backfill splits its batches.</summary>
    public const int MaxBodyBytes = 1 << 20;

    private const int ReadChunkBytes = 16 * 1024;

    /// <summary>Maps the events receiver.</summary>
    public static IEndpointRouteBuilder MapEventsApi(this IEndpointRouteBuilder app)
    {
        app.MapPost("/api/v1/events", PostEventsAsync);
        return app;
    }

    private static async Task<IResult> PostEventsAsync(HttpContext context, CancellationToken cancellationToken)
    {
        var pipeline = context.RequestServices.GetService<CostPipeline>();
        if (pipeline is null)
            return Results.Problem(detail: "this server does not rate live input (no rating pipeline is running)", statusCode: StatusCodes.Status503ServiceUnavailable, title: "No live rating");
        if (!IsJson(context.Request.ContentType))
        {
            return Results.Problem(detail: $"Content-Type must be application/json, got '{context.Request.ContentType}'",
                statusCode: StatusCodes.Status415UnsupportedMediaType, title: "Unsupported media type");
        }
        if (context.Request.ContentLength > MaxBodyBytes)
            return TooLarge();

        var buffer = ArrayPool<byte>.Shared.Rent(ReadChunkBytes);
        try
        {
            // Grows by doubling as bytes arrive, never from the Content-Length a client sent.
            var length = 0;
            while (true)
            {
                if (length == buffer.Length)
                {
                    if (length > MaxBodyBytes)
                        return TooLarge();
                    var larger = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length * 2, MaxBodyBytes + 1));
                    buffer.AsSpan(0, length).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }
                var read = await context.Request.Body.ReadAsync(buffer.AsMemory(length), cancellationToken).ConfigureAwait(false);
                if (read == 0)
                    break;
                length += read;
                if (length > MaxBodyBytes)
                    return TooLarge();
            }

            IReadOnlyList<FleetEvent> events;
            try
            {
                events = EventsDecoder.Decode(buffer.AsSpan(0, length));
            }
            catch (InvalidTelemetryException e)
            {
                return Results.Problem(detail: e.Message, statusCode: StatusCodes.Status400BadRequest, title: "Invalid event");
            }
            // The pipeline wants time order; a stable sort keeps same-instant events in the order sent
            // (workload_started before its gpu_allocated).
            pipeline.Apply([.. events.OrderBy(e => e.Time)]);
            return Results.Text($"{{\"accepted\": {events.Count}}}\n", "application/json; charset=utf-8", statusCode: StatusCodes.Status202Accepted);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static IResult TooLarge() =>
        Results.Problem(detail: $"the body is larger than {MaxBodyBytes} bytes; send the events in smaller batches",
            statusCode: StatusCodes.Status413PayloadTooLarge, title: "Request body too large");

    private static bool IsJson(string? contentType) =>
        MediaTypeHeaderValue.TryParse(contentType, out var media)
        && media.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase);
}
