namespace Burnrate.Ingest;

/// <summary>What kind of body an <see cref="IngestRecord"/> holds, which says how to decode it again on replay.</summary>
public enum IngestKind : byte
{
    /// <summary>A Prometheus remote write body (Snappy + protobuf); <see cref="IngestRecord.Source"/> is its Content-Type.</summary>
    RemoteWrite = 1,

    /// <summary>An OTLP/HTTP <c>ExportMetricsServiceRequest</c> in protobuf.</summary>
    OtlpProtobuf = 2,

    /// <summary>An OTLP/HTTP <c>ExportMetricsServiceRequest</c> in JSON.</summary>
    OtlpJson = 3,

    /// <summary>A scraped text exposition page; <see cref="IngestRecord.Source"/> is <c>job</c> and <c>instance</c> separated by a newline.</summary>
    Exposition = 4,

    /// <summary>A <c>POST /api/v1/events</c> JSON body.</summary>
    Events = 5,

    /// <summary>
    /// Not an input: the point between inputs where the reader rated the minutes closed at
    /// <see cref="IngestRecord.ReceivedAt"/> (empty body). Replay rates at exactly these points, so an input late for its
    /// minute lands in the same minute as it did before the crash.
    /// </summary>
    RatingMark = 6,
}

/// <summary>
/// One accepted input exactly as it arrived: its kind, when it was received, its source (Content-Type, scrape target)
/// and its body. This is what the write-ahead log keeps, so a replay decodes and maps exactly what was acknowledged.
/// </summary>
public sealed record IngestRecord(IngestKind Kind, DateTimeOffset ReceivedAt, string Source, ReadOnlyMemory<byte> Body);
