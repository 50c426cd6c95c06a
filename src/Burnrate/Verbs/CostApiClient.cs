using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Burnrate.Reporting;
using Burnrate.Storage;

namespace Burnrate.Cli.Verbs;

/// <summary>Asks a running server's <c>GET /api/v1/costs</c> for a report.</summary>
internal static class CostApiClient
{
    public static Uri BuildUri(Uri server, CostQuery query)
    {
        var text = new StringBuilder("api/v1/costs?by=");
        text.Append(Uri.EscapeDataString(string.Join(',', query.By.Select(d => d.ToName()))));
        text.Append("&from=").Append(Uri.EscapeDataString(TimeExpression.Format(query.From)));
        text.Append("&to=").Append(Uri.EscapeDataString(TimeExpression.Format(query.To)));
        if (query.Step is { } step)
            text.Append("&step=").Append(TimeExpression.FormatDuration(step));
        foreach (var (dimension, values) in query.Filters)
            text.Append("&filter=").Append(Uri.EscapeDataString(dimension.ToName() + ":" + string.Join('|', values)));
        var root = server.AbsoluteUri.EndsWith('/') ? server : new Uri(server.AbsoluteUri + "/");
        return new Uri(root, text.ToString());
    }

    public static async Task<CostReport> GetAsync(CliServices services, Uri server, string? apiKey, CostQuery query, CancellationToken cancellationToken)
    {
        var body = await GetJsonAsync(services, server, BuildUri(server, query), apiKey, cancellationToken).ConfigureAwait(false);
        return CostReportFormats.ReadApiJson(body);
    }

    /// <summary>
    /// GETs <paramref name="uri"/> from a running server (JSON, with the API key) and returns the body. A server that
    /// cannot be reached, does not answer in time or answers an error is an <see cref="InvalidOperationException"/>
    /// naming the server (and, for an error, the problem's detail and how to pass a key).
    /// </summary>
    internal static async Task<string> GetJsonAsync(CliServices services, Uri server, Uri uri, string? apiKey, CancellationToken cancellationToken)
    {
        using var client = services.CreateHttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, uri);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        ApiKeyOption.Apply(request, apiKey);
        HttpResponseMessage response;
        try
        {
            response = await client.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new InvalidOperationException($"cannot reach the server at {server}: {e.Message} (is `burnrate serve` or `burnrate demo` running there? see --server)", e);
        }
        catch (TaskCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new InvalidOperationException($"the server at {server} did not answer in time", e);
        }
        using (response)
        {
            var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
                throw new InvalidOperationException($"the server answered {(int)response.StatusCode} {response.ReasonPhrase} to GET {uri.AbsolutePath}: {ProblemDetail(body)}{ApiKeyOption.Hint(response.StatusCode, apiKey)}");
            return body;
        }
    }

    private static string ProblemDetail(string body)
    {
        try
        {
            using var document = JsonDocument.Parse(body);
            if (document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("detail", out var detail)
                && detail.ValueKind == JsonValueKind.String)
                return detail.GetString()!;
        }
        catch (JsonException)
        {
        }
        return body.Length > 500 ? body[..500] : body;
    }
}
