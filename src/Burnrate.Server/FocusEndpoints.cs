using System.Security.Cryptography;
using System.Text;
using Burnrate.Billing;
using Burnrate.Configuration;
using Burnrate.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Burnrate.Server;

/// <summary>
/// FOCUS in and out: <c>POST /api/v1/billing/focus</c> imports a provider's bill (CSV or Parquet body) and answers
/// what was imported and how it compares with the ledger; <c>GET /api/v1/focus</c> exports the ledger as FOCUS 1.2.
/// See docs/billing.md.
/// </summary>
public static class FocusEndpoints
{
    /// <summary>The largest bill body accepted by default (bigger files: <c>burnrate reconcile FILE</c> on the server's host).</summary>
    public const long DefaultMaxBodyBytes = 512L * 1024 * 1024;

    /// <summary>The longest range exported per minute; per hour there is no limit beyond the ledger.</summary>
    public static readonly TimeSpan MaxMinuteRange = TimeSpan.FromDays(31);

    private const string ImportTitle = "Invalid FOCUS file";
    private const string ExportTitle = "Invalid FOCUS export query";

    /// <summary>Maps <c>POST /api/v1/billing/focus</c> and <c>GET /api/v1/focus</c>. Needs an <see cref="ICostStore"/> in DI.</summary>
    public static IEndpointRouteBuilder MapFocusApi(this IEndpointRouteBuilder app)
    {
        app.MapPost("/api/v1/billing/focus", ImportAsync).RequireScope(ApiScopes.Admin); // bills cover every team
        app.MapGet("/api/v1/focus", ExportAsync).RequireScope(ApiScopes.Admin); // every team's rows: no team filter yet
        return app;
    }

    private static async Task<IResult> ImportAsync(HttpContext context, CancellationToken cancellationToken)
    {
        var query = context.Request.Query;
        if (ApiJson.RefuseUnknownParameters(query, ImportTitle, "name") is { } unknown)
            return unknown;
        var maxBodyBytes = context.RequestServices.GetService<FocusImportLimit>()?.MaxBodyBytes ?? DefaultMaxBodyBytes;
        if (context.Request.ContentLength > maxBodyBytes)
            return TooLarge(maxBodyBytes);
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
            limit.MaxRequestBodySize = maxBodyBytes + 1;

        var ct = cancellationToken;
        var temp = Path.Combine(Path.GetTempPath(), "burnrate-focus-" + Guid.NewGuid().ToString("N"));
        try
        {
            string hash;
            await using (var file = File.Create(temp))
            {
                using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                var buffer = new byte[81920];
                long total = 0;
                int read;
                while ((read = await context.Request.Body.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
                {
                    total += read;
                    if (total > maxBodyBytes)
                        return TooLarge(maxBodyBytes);
                    sha.AppendData(buffer, 0, read);
                    await file.WriteAsync(buffer.AsMemory(0, read), ct).ConfigureAwait(false);
                }
                if (total == 0)
                    return ApiJson.BadRequest(ImportTitle, "the body is empty; send a FOCUS CSV or Parquet file");
                hash = Convert.ToHexStringLower(sha.GetHashAndReset());
            }
            // The same body uploaded twice is the same source: its lines replace themselves.
            var source = query["name"].LastOrDefault() is { Length: > 0 } name ? "upload:" + name : "upload:sha256:" + hash;
            var store = context.RequestServices.GetRequiredService<ICostStore>();
            FocusImportResult result;
            try
            {
                result = await FocusImporter.ImportAsync(store, temp, source, cancellationToken: ct).ConfigureAwait(false);
            }
            catch (FocusFileException e)
            {
                return ApiJson.BadRequest(ImportTitle, e.Message.Replace(Path.GetFileName(temp), "the body", StringComparison.Ordinal));
            }
            ReconciliationReport? report = result.PeriodStart is { } start && result.PeriodEnd is { } end
                ? await Reconciler.ReconcileAsync(store, start, end, cancellationToken: ct).ConfigureAwait(false)
                : null;
            return ApiJson.Document(json =>
            {
                json.WriteStartObject();
                json.WritePropertyName("import");
                FocusJson.WriteImport(json, result);
                json.WritePropertyName("reconciliation");
                if (report is null)
                    json.WriteNullValue();
                else
                    FocusJson.WriteReconciliation(json, report);
                json.WriteEndObject();
            });
        }
        finally
        {
            File.Delete(temp);
        }
    }

    private static IResult TooLarge(long maxBodyBytes) =>
        Results.Problem(detail: $"the body is larger than {maxBodyBytes} bytes; split the bill, or import it with `burnrate reconcile FILE` on the server's host",
            statusCode: StatusCodes.Status413PayloadTooLarge, title: "Request body too large");

    private static async Task<IResult> ExportAsync(HttpContext context, CancellationToken cancellationToken)
    {
        var query = context.Request.Query;
        if (ApiJson.RefuseUnknownParameters(query, ExportTitle, "from", "to", "format", "granularity") is { } unknown)
            return unknown;
        var now = (context.RequestServices.GetService<TimeProvider>() ?? TimeProvider.System).GetUtcNow();
        if (!ApiJson.TryTime(query, "from", now, ExportTitle, out var fromParam, out var problem) ||
            !ApiJson.TryTime(query, "to", now, ExportTitle, out var toParam, out problem))
            return problem!;
        var format = query["format"].LastOrDefault() ?? "csv";
        if (format is not ("csv" or "parquet"))
            return ApiJson.BadRequest(ExportTitle, $"format: '{format}' is not csv or parquet");
        var granularity = query["granularity"].LastOrDefault() ?? "hour";
        TimeSpan step;
        switch (granularity)
        {
            case "hour":
                step = TimeSpan.FromHours(1);
                break;
            case "minute":
                step = TimeSpan.FromMinutes(1);
                break;
            default:
                return ApiJson.BadRequest(ExportTitle, $"granularity: '{granularity}' is not hour or minute");
        }
        // Whole charge periods: the range is floored and ceiled to the step.
        var to = Ceil(toParam ?? now, step);
        var from = Floor(fromParam ?? to.AddDays(-1), step);
        if (from >= to)
            return ApiJson.BadRequest(ExportTitle, $"from ({ApiJson.Time(from)}) must be before to ({ApiJson.Time(to)})");
        if (step == TimeSpan.FromMinutes(1) && to - from > MaxMinuteRange)
            return ApiJson.BadRequest(ExportTitle, $"granularity=minute covers at most {MaxMinuteRange.TotalDays} days; narrow from/to or use granularity=hour");

        var store = context.RequestServices.GetRequiredService<ICostStore>();
        var ct = cancellationToken;
        var fileName = $"burnrate-focus-{from.UtcDateTime:yyyyMMddHHmm}-{to.UtcDateTime:yyyyMMddHHmm}.{format}";
        if (format == "csv")
        {
            context.Response.ContentType = "text/csv; charset=utf-8";
            context.Response.Headers.ContentDisposition = $"attachment; filename=\"{fileName}\"";
            await using var writer = new StreamWriter(context.Response.Body, new UTF8Encoding(false), leaveOpen: true);
            await FocusExporter.WriteCsvAsync(store, from, to, step, writer, ct).ConfigureAwait(false);
            return Results.Empty;
        }
        var temp = Path.Combine(Path.GetTempPath(), "burnrate-focus-export-" + Guid.NewGuid().ToString("N") + ".parquet");
        try
        {
            await FocusExporter.WriteParquetAsync(store, from, to, step, temp, ct).ConfigureAwait(false);
            return Results.Bytes(await File.ReadAllBytesAsync(temp, ct).ConfigureAwait(false), "application/vnd.apache.parquet", fileName);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    private static DateTimeOffset Floor(DateTimeOffset t, TimeSpan step) =>
        new(t.UtcTicks - (t.UtcTicks % step.Ticks), TimeSpan.Zero);

    private static DateTimeOffset Ceil(DateTimeOffset t, TimeSpan step) =>
        t.UtcTicks % step.Ticks == 0 ? t.ToUniversalTime() : Floor(t, step) + step;
}

/// <summary>Overrides the largest FOCUS body <c>POST /api/v1/billing/focus</c> accepts (register one in DI).</summary>
/// <param name="MaxBodyBytes">Bytes; a bigger body is 413.</param>
public sealed record FocusImportLimit(long MaxBodyBytes);
