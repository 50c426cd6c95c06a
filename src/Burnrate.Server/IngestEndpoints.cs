using System.Buffers;
using System.Globalization;
using System.IO.Compression;
using System.Runtime.CompilerServices;
using Burnrate.Configuration;
using Burnrate.Ingest;
using Burnrate.Pricing;
using Burnrate.Protocols.Events;
using Burnrate.Protocols.Otlp;
using Burnrate.Protocols.RemoteWrite;
using Burnrate.Telemetry;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Net.Http.Headers;

namespace Burnrate.Server;

/// <summary>
/// The receivers: <c>POST /api/v1/write</c> (Prometheus remote write 1.0 and 2.0), <c>POST /v1/metrics</c> (OTLP/HTTP,
/// protobuf and JSON) and <c>POST /api/v1/events</c> (exact lifecycle events, schema in docs/api.md). Each decodes the
/// whole body first, so bad input is refused before anything is kept (400, 413, 415 as RFC 7807 problem details), then
/// hands the raw body to the <see cref="IngestPipeline"/>, which logs it in the write-ahead log and queues it; only then
/// is the request acknowledged. A full queue answers 503 with <c>Retry-After</c> (Prometheus and the OTLP exporters
/// retry 5xx and drop 4xx). See docs/ingest.md.
/// </summary>
public static class IngestEndpoints
{
    /// <summary>The largest events body accepted (1 MiB): a hook sends a few events, a backfill splits its batches.</summary>
    public const int MaxEventsBodyBytes = 1 << 20;

    /// <summary>
    /// The largest remote write or OTLP body accepted by default, compressed and uncompressed (32 MiB); the pipeline's
    /// <see cref="IngestOptions.MaxMetricsBodyBytes"/> sets it.
    /// </summary>
    public const int MaxMetricsBodyBytes = IngestOptions.DefaultMaxMetricsBodyBytes;

    /// <summary>The <c>Retry-After</c> seconds sent with a 503.</summary>
    public const int RetryAfterSeconds = 1;

    private const int ReadChunkBytes = 64 * 1024;

    /// <summary>Maps the three receivers.</summary>
    public static IEndpointRouteBuilder MapIngestApi(this IEndpointRouteBuilder app)
    {
        app.MapPost("/api/v1/write", PostRemoteWriteAsync).RequireScope(ApiScopes.Ingest);
        app.MapPost("/v1/metrics", PostOtlpAsync).RequireScope(ApiScopes.Ingest);
        app.MapPost("/api/v1/events", PostEventsAsync).RequireScope(ApiScopes.Ingest);
        app.MapPost("/api/v1/events/aws-batch", PostAwsBatchEventsAsync).RequireScope(ApiScopes.Ingest);
        return app;
    }

    private static async Task<IResult> PostRemoteWriteAsync(HttpContext context, CancellationToken cancellationToken)
    {
        const IngestKind Kind = IngestKind.RemoteWrite;
        if (context.RequestServices.GetService<IngestPipeline>() is not { } ingest)
            return NoPipeline();
        var encoding = context.Request.Headers.ContentEncoding.ToString();
        if (encoding.Length > 0 && !encoding.Equals("snappy", StringComparison.OrdinalIgnoreCase))
            return Invalid(ingest, Kind, StatusCodes.Status415UnsupportedMediaType, "Unsupported content encoding", $"Content-Encoding must be snappy, got '{encoding}'");
        var contentType = context.Request.ContentType;
        try
        {
            RemoteWriteDecoder.DetectVersion(contentType);
        }
        catch (UnsupportedRemoteWriteTypeException e)
        {
            return Invalid(ingest, Kind, StatusCodes.Status415UnsupportedMediaType, "Unsupported remote write message", e.Message);
        }

        var max = ingest.MaxMetricsBodyBytes;
        using var body = await ReadBodyAsync(context, max, cancellationToken).ConfigureAwait(false);
        if (body.TooLarge)
            return Invalid(ingest, Kind, StatusCodes.Status413PayloadTooLarge, "Request body too large", $"the body is larger than {max} bytes; lower max_samples_per_send");
        RemoteWriteResult decoded;
        try
        {
            decoded = RemoteWriteDecoder.Decode(body.Span, contentType, max, ingest.RemoteWriteSeries);
        }
        catch (UnsupportedRemoteWriteTypeException e)
        {
            return Invalid(ingest, Kind, StatusCodes.Status415UnsupportedMediaType, "Unsupported remote write message", e.Message);
        }
        catch (InvalidTelemetryException e)
        {
            return Invalid(ingest, Kind, StatusCodes.Status400BadRequest, "Invalid remote write request", e.Message);
        }
        var record = new IngestRecord(Kind, Now(context), contentType ?? "", body.Memory);
        if (Accept(ingest, record, IngestPayload.OfSamples(decoded.Samples)) is { } refused)
            return refused;
        if (decoded.Version == RemoteWriteVersion.V2)
        {
            var headers = context.Response.Headers;
            headers["X-Prometheus-Remote-Write-Samples-Written"] = decoded.SampleCount.ToString(CultureInfo.InvariantCulture);
            headers["X-Prometheus-Remote-Write-Histograms-Written"] = "0";
            headers["X-Prometheus-Remote-Write-Exemplars-Written"] = "0";
        }
        return Results.NoContent();
    }

    private static async Task<IResult> PostOtlpAsync(HttpContext context, CancellationToken cancellationToken)
    {
        if (context.RequestServices.GetService<IngestPipeline>() is not { } ingest)
            return NoPipeline();
        var mediaType = MediaTypeHeaderValue.TryParse(context.Request.ContentType, out var media) ? media.MediaType.Value ?? "" : "";
        IngestKind kind;
        if (mediaType.Equals("application/x-protobuf", StringComparison.OrdinalIgnoreCase))
            kind = IngestKind.OtlpProtobuf;
        else if (mediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase))
            kind = IngestKind.OtlpJson;
        else
        {
            return Invalid(ingest, IngestKind.OtlpProtobuf, StatusCodes.Status415UnsupportedMediaType, "Unsupported media type",
                $"Content-Type must be application/x-protobuf or application/json, got '{context.Request.ContentType}'");
        }
        var encoding = context.Request.Headers.ContentEncoding.ToString();
        var gzip = encoding.Equals("gzip", StringComparison.OrdinalIgnoreCase);
        if (encoding.Length > 0 && !gzip && !encoding.Equals("identity", StringComparison.OrdinalIgnoreCase))
            return Invalid(ingest, kind, StatusCodes.Status415UnsupportedMediaType, "Unsupported content encoding", $"Content-Encoding must be gzip or absent, got '{encoding}'");

        var max = ingest.MaxMetricsBodyBytes;
        using var body = await ReadBodyAsync(context, max, cancellationToken).ConfigureAwait(false);
        if (body.TooLarge)
            return Invalid(ingest, kind, StatusCodes.Status413PayloadTooLarge, "Request body too large", $"the body is larger than {max} bytes; export in smaller batches");
        var raw = body.Memory;
        if (gzip)
        {
            try
            {
                raw = Gunzip(body.Memory, max);
            }
            catch (InvalidDataException e)
            {
                return Invalid(ingest, kind, StatusCodes.Status400BadRequest, "Invalid OTLP request", "gzip: " + e.Message);
            }
            catch (InsufficientMemoryException)
            {
                return Invalid(ingest, kind, StatusCodes.Status413PayloadTooLarge, "Request body too large", $"the body inflates past {max} bytes; export in smaller batches");
            }
        }
        OtlpResult decoded;
        try
        {
            decoded = kind == IngestKind.OtlpProtobuf ? OtlpMetricsDecoder.DecodeProtobuf(raw.Span) : OtlpMetricsDecoder.DecodeJson(raw.Span);
        }
        catch (InvalidTelemetryException e)
        {
            return Invalid(ingest, kind, StatusCodes.Status400BadRequest, "Invalid OTLP request", e.Message);
        }
        var record = new IngestRecord(kind, Now(context), "", raw);
        if (Accept(ingest, record, IngestPayload.OfSamples(decoded.Samples)) is { } refused)
            return refused;
        return kind == IngestKind.OtlpProtobuf
            ? Results.Bytes(decoded.ToProtobufResponse(), "application/x-protobuf")
            : Results.Text(decoded.ToJsonResponse(), "application/json");
    }

    private static async Task<IResult> PostEventsAsync(HttpContext context, CancellationToken cancellationToken)
    {
        const IngestKind Kind = IngestKind.Events;
        if (context.RequestServices.GetService<IngestPipeline>() is not { } ingest)
            return NoPipeline();
        if (!MediaTypeHeaderValue.TryParse(context.Request.ContentType, out var media) || !media.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase))
            return Invalid(ingest, Kind, StatusCodes.Status415UnsupportedMediaType, "Unsupported media type", $"Content-Type must be application/json, got '{context.Request.ContentType}'");
        using var body = await ReadBodyAsync(context, MaxEventsBodyBytes, cancellationToken).ConfigureAwait(false);
        if (body.TooLarge)
            return Invalid(ingest, Kind, StatusCodes.Status413PayloadTooLarge, "Request body too large", $"the body is larger than {MaxEventsBodyBytes} bytes; send the events in smaller batches");
        IReadOnlyList<FleetEvent> events;
        try
        {
            events = EventsDecoder.Decode(body.Span);
        }
        catch (InvalidTelemetryException e)
        {
            return Invalid(ingest, Kind, StatusCodes.Status400BadRequest, "Invalid event", e.Message);
        }
        var record = new IngestRecord(Kind, Now(context), "", body.Memory);
        if (Accept(ingest, record, IngestPayload.OfEvents(IngestDecoder.OrderByTime(events))) is { } refused)
            return refused;
        return Results.Text($"{{\"accepted\": {events.Count}}}\n", "application/json; charset=utf-8", statusCode: StatusCodes.Status202Accepted);
    }

    /// <summary>
    /// Amazon EventBridge <c>Batch Job State Change</c> events, translated into lifecycle events (<see cref="AwsBatchEvents"/>)
    /// that are logged and applied as a <c>POST /api/v1/events</c> body. <c>instance_type</c> (required) and
    /// <c>capacity</c> (<c>on_demand</c>) name the job queue's instance.
    /// </summary>
    /// <summary>The running Batch jobs of each step, per ingest pipeline (one per server), so a step stops with its last job.</summary>
    private static readonly ConditionalWeakTable<IngestPipeline, AwsBatchSteps> s_batchSteps = new();

    private static async Task<IResult> PostAwsBatchEventsAsync(HttpContext context, CancellationToken cancellationToken)
    {
        const IngestKind Kind = IngestKind.Events;
        if (context.RequestServices.GetService<IngestPipeline>() is not { } ingest)
            return NoPipeline();
        if (!MediaTypeHeaderValue.TryParse(context.Request.ContentType, out var media) || !media.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase))
            return Invalid(ingest, Kind, StatusCodes.Status415UnsupportedMediaType, "Unsupported media type", $"Content-Type must be application/json, got '{context.Request.ContentType}'");
        var instanceType = context.Request.Query["instance_type"].ToString();
        if (instanceType.Length == 0)
            return Invalid(ingest, Kind, StatusCodes.Status400BadRequest, "Invalid parameter", "instance_type is required: the instance type of the job queue's compute environment (e.g. p4d.24xlarge)");
        var capacityText = context.Request.Query["capacity"].ToString();
        var capacity = CapacityType.OnDemand;
        if (capacityText.Length > 0 && !CapacityTypes.TryParse(capacityText, out capacity))
            return Invalid(ingest, Kind, StatusCodes.Status400BadRequest, "Invalid parameter", $"capacity must be on_demand, spot or reserved, got '{capacityText}'");
        using var body = await ReadBodyAsync(context, MaxEventsBodyBytes, cancellationToken).ConfigureAwait(false);
        if (body.TooLarge)
            return Invalid(ingest, Kind, StatusCodes.Status413PayloadTooLarge, "Request body too large", $"the body is larger than {MaxEventsBodyBytes} bytes; send the events in smaller batches");
        byte[] translated;
        IReadOnlyList<FleetEvent> events;
        try
        {
            translated = AwsBatchEvents.Translate(body.Span, instanceType, capacity, ingest.Cost.Prices, out _, s_batchSteps.GetValue(ingest, _ => new AwsBatchSteps()));
            events = EventsDecoder.Decode(translated);
        }
        catch (InvalidTelemetryException e)
        {
            return Invalid(ingest, Kind, StatusCodes.Status400BadRequest, "Invalid event", e.Message);
        }
        if (events.Count > 0)
        {
            var record = new IngestRecord(Kind, Now(context), "aws-batch", translated);
            if (Accept(ingest, record, IngestPayload.OfEvents(IngestDecoder.OrderByTime(events))) is { } refused)
                return refused;
        }
        return Results.Text($"{{\"accepted\": {events.Count}}}\n", "application/json; charset=utf-8", statusCode: StatusCodes.Status202Accepted);
    }

    private static RetryAfterResult? Accept(IngestPipeline ingest, IngestRecord record, IngestPayload payload)
    {
        bool accepted;
        try
        {
            accepted = ingest.TryAccept(record, payload);
        }
        catch (IOException e)
        {
            return Unavailable($"the write-ahead log cannot be written ({e.Message}); nothing was kept, send again");
        }
        return accepted ? null : Unavailable($"the ingest queue is full ({ingest.QueuedItems} of {ingest.QueueCapacity} samples waiting); nothing was kept, retry after {RetryAfterSeconds}s");
    }

    private static RetryAfterResult Unavailable(string detail) => new RetryAfterResult(
        Results.Problem(detail: detail, statusCode: StatusCodes.Status503ServiceUnavailable, title: "Busy"));

    private static IResult Invalid(IngestPipeline ingest, IngestKind kind, int status, string title, string detail)
    {
        ingest.Stats.Invalid(kind);
        return Results.Problem(detail: detail, statusCode: status, title: title);
    }

    private static IResult NoPipeline() =>
        Results.Problem(detail: "this server does not rate live input (no ingest pipeline is running)", statusCode: StatusCodes.Status503ServiceUnavailable, title: "No live rating");

    private static DateTimeOffset Now(HttpContext context) =>
        (context.RequestServices.GetService<TimeProvider>() ?? TimeProvider.System).GetUtcNow();

    private static ReadOnlyMemory<byte> Gunzip(ReadOnlyMemory<byte> compressed, int max)
    {
        using var input = new MemoryStream(compressed.ToArray(), writable: false);
        using var gzip = new GZipStream(input, CompressionMode.Decompress);
        using var output = new MemoryStream();
        var chunk = new byte[ReadChunkBytes];
        int read;
        while ((read = gzip.Read(chunk)) > 0)
        {
            if (output.Length + read > max)
                throw new InsufficientMemoryException();
            output.Write(chunk, 0, read);
        }
        return output.GetBuffer().AsMemory(0, (int)output.Length);
    }

    /// <summary>Reads the body into a pooled buffer that grows as bytes arrive (never from the Content-Length sent).</summary>
    private static async Task<PooledBody> ReadBodyAsync(HttpContext context, int max, CancellationToken cancellationToken)
    {
        if (context.Request.ContentLength > max)
            return PooledBody.Overflow;
        var initial = context.Request.ContentLength is { } declared and > 0 ? (int)Math.Min(declared + 1, max + 1) : ReadChunkBytes;
        var buffer = ArrayPool<byte>.Shared.Rent(initial);
        var length = 0;
        while (true)
        {
            if (length == buffer.Length)
            {
                if (length > max)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    return PooledBody.Overflow;
                }
                var larger = ArrayPool<byte>.Shared.Rent((int)Math.Min((long)buffer.Length * 2, max + 1L));
                buffer.AsSpan(0, length).CopyTo(larger);
                ArrayPool<byte>.Shared.Return(buffer);
                buffer = larger;
            }
            var read = await context.Request.Body.ReadAsync(buffer.AsMemory(length), cancellationToken).ConfigureAwait(false);
            if (read == 0)
                break;
            length += read;
            if (length > max)
            {
                ArrayPool<byte>.Shared.Return(buffer);
                return PooledBody.Overflow;
            }
        }
        return new PooledBody(buffer, length);
    }

    private sealed class PooledBody(byte[]? buffer, int length) : IDisposable
    {
        public static PooledBody Overflow => new(null, -1);

        private byte[]? _buffer = buffer;

        public bool TooLarge => length < 0;

        public ReadOnlySpan<byte> Span => _buffer.AsSpan(0, length);

        public ReadOnlyMemory<byte> Memory => _buffer.AsMemory(0, length);

        public void Dispose()
        {
            if (_buffer is not null)
                ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = null;
        }
    }

    private sealed class RetryAfterResult(IResult inner) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.Headers.RetryAfter = RetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
            return inner.ExecuteAsync(httpContext);
        }
    }
}
