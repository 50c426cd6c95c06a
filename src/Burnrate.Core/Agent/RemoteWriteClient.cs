using System.Net.Http.Headers;
using System.Text.Json;
using Burnrate.Protocols.RemoteWrite;
using Burnrate.Telemetry;

namespace Burnrate.Agent;

/// <summary>How one remote write request ended.</summary>
public enum PushStatus
{
    /// <summary>2xx: the receiver has the samples.</summary>
    Sent,
    /// <summary>4xx: the receiver refused the samples; sending them again would fail again (not retried).</summary>
    Rejected,
    /// <summary>5xx, no answer, or a network error: send the same samples again after a backoff.</summary>
    Failed,
}

/// <summary>The outcome of one request: its status, what the receiver or the network said, and the receiver's <c>Retry-After</c>.</summary>
public readonly record struct PushResult(PushStatus Status, string Detail, TimeSpan? RetryAfter = null);

/// <summary>
/// Sends samples as Prometheus Remote Write 1.0 requests (telemetry-formats.md §1.1: Snappy block body,
/// <c>Content-Type: application/x-protobuf</c>, <c>Content-Encoding: snappy</c>,
/// <c>X-Prometheus-Remote-Write-Version: 0.1.0</c>) and classifies the answer the way Prometheus does: 2xx sent, 4xx
/// rejected for good (429 included, as Prometheus does by default), everything else worth a retry.
/// </summary>
public sealed class RemoteWriteClient(HttpClient http, Uri endpoint, string userAgent, TimeProvider? time = null)
{
    private const int MaxDetailChars = 500;
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    /// <summary>Where the requests go (<c>{server}/api/v1/write</c>).</summary>
    public Uri Endpoint { get; } = endpoint;

    /// <summary>Sends <paramref name="samples"/> as one request; never throws for HTTP or network failures.</summary>
    public async Task<PushResult> PushAsync(IReadOnlyList<MetricSample> samples, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, Endpoint) { Content = new ByteArrayContent(RemoteWriteEncoder.EncodeV1(samples)) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue(RemoteWriteEncoder.ContentType);
        request.Content.Headers.ContentEncoding.Add("snappy");
        request.Headers.Add("X-Prometheus-Remote-Write-Version", RemoteWriteEncoder.VersionHeader);
        request.Headers.TryAddWithoutValidation("User-Agent", userAgent);
        try
        {
            using var response = await http.SendAsync(request, cancellationToken).ConfigureAwait(false);
            if (response.IsSuccessStatusCode)
                return new PushResult(PushStatus.Sent, $"{(int)response.StatusCode} {response.ReasonPhrase}");
            var detail = $"{(int)response.StatusCode} {response.ReasonPhrase}";
            if (await ReadDetailAsync(response, cancellationToken).ConfigureAwait(false) is { Length: > 0 } body)
                detail += ": " + body;
            var status = (int)response.StatusCode is >= 400 and < 500 ? PushStatus.Rejected : PushStatus.Failed;
            return new PushResult(status, detail, RetryAfter(response.Headers.RetryAfter));
        }
        catch (HttpRequestException e)
        {
            return new PushResult(PushStatus.Failed, e.Message);
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new PushResult(PushStatus.Failed, "no answer within the HTTP timeout");
        }
    }

    /// <summary>The problem details' <c>detail</c>, else the start of the body.</summary>
    private static async Task<string> ReadDetailAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var body = (await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false)).Trim();
        if (response.Content.Headers.ContentType?.MediaType is "application/problem+json" or "application/json")
        {
            try
            {
                using var json = JsonDocument.Parse(body);
                if (json.RootElement.ValueKind == JsonValueKind.Object && json.RootElement.TryGetProperty("detail", out var d) && d.ValueKind == JsonValueKind.String)
                    body = d.GetString() ?? body;
            }
            catch (JsonException)
            {
            }
        }
        return body.Length > MaxDetailChars ? body[..MaxDetailChars] + "…" : body;
    }

    private TimeSpan? RetryAfter(RetryConditionHeaderValue? header) => header switch
    {
        { Delta: { } delta } => delta,
        { Date: { } date } => date > _time.GetUtcNow() ? date - _time.GetUtcNow() : TimeSpan.Zero,
        _ => null,
    };
}
