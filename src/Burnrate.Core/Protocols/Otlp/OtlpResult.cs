using Burnrate.Protocols.Otlp.Proto;
using Burnrate.Telemetry;
using Google.Protobuf;

namespace Burnrate.Protocols.Otlp;

/// <summary>
/// What one OTLP metrics export request decoded to: its samples (labels sorted by name, the samples of one data
/// point sharing one label array), one metadata entry per metric family, and the data point counts that the
/// response's <c>partial_success</c> reports.
/// </summary>
public sealed class OtlpResult
{
    internal OtlpResult(
        IReadOnlyList<MetricSample> samples,
        IReadOnlyList<MetricMetadata> metadata,
        long acceptedDataPoints,
        long rejectedDataPoints,
        string? partialSuccessMessage)
    {
        Samples = samples;
        Metadata = metadata;
        AcceptedDataPoints = acceptedDataPoints;
        RejectedDataPoints = rejectedDataPoints;
        PartialSuccessMessage = partialSuccessMessage;
    }

    /// <summary>The samples, in request order (metric by metric, data point by data point).</summary>
    public IReadOnlyList<MetricSample> Samples { get; }

    /// <summary>
    /// One entry per metric family (the sanitized metric name, first metric wins): the type from
    /// <see cref="OtlpMetricTypes"/>, the metric's description as help, and its UCUM unit as sent.
    /// </summary>
    public IReadOnlyList<MetricMetadata> Metadata { get; }

    /// <summary>Data points turned into samples (a histogram point counts once, for its two samples).</summary>
    public long AcceptedDataPoints { get; }

    /// <summary>Data points not turned into samples; reported to the client as <c>rejected_data_points</c>.</summary>
    public long RejectedDataPoints { get; }

    /// <summary>Why data points were rejected, in English, for <c>error_message</c>; null when none was.</summary>
    public string? PartialSuccessMessage { get; }

    /// <summary>
    /// The binary <c>ExportMetricsServiceResponse</c> for a 200 answer: <c>partial_success</c> set when something was
    /// rejected, otherwise an empty message (zero bytes).
    /// </summary>
    public byte[] ToProtobufResponse() => BuildResponse().ToByteArray();

    /// <summary>
    /// The OTLP JSON <c>ExportMetricsServiceResponse</c> for a 200 answer: <c>{}</c>, or
    /// <c>{"partialSuccess":{"rejectedDataPoints":"3","errorMessage":"…"}}</c> when something was rejected.
    /// </summary>
    public string ToJsonResponse() => JsonFormatter.Default.Format(BuildResponse());

    private ExportMetricsServiceResponse BuildResponse()
    {
        var response = new ExportMetricsServiceResponse();
        if (RejectedDataPoints > 0 || PartialSuccessMessage is not null)
        {
            response.PartialSuccess = new ExportMetricsPartialSuccess
            {
                RejectedDataPoints = RejectedDataPoints,
                ErrorMessage = PartialSuccessMessage ?? "",
            };
        }
        return response;
    }
}
