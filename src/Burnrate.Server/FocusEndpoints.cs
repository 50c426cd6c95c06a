using System.Security.Cryptography;
using System.Text;
using Burnrate.Billing;
using Burnrate.Configuration;
using Burnrate.Pricing.Terms;
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
        app.MapGet("/api/v1/billing/calibration", CalibrationAsync).RequireScope(ApiScopes.Admin); // provider-wide figures
        return app;
    }

    private static async Task<IResult> ImportAsync(HttpContext context, CancellationToken cancellationToken)
    {
        var query = context.Request.Query;
        if (ApiJson.RefuseUnknownParameters(query, ImportTitle, "name", "calibrate") is { } unknown)
            return unknown;
        var learn = query["calibrate"].LastOrDefault() switch
        {
            null or "true" => true,
            "false" => false,
            var other => (bool?)null,
        };
        if (learn is not { } calibrate)
            return ApiJson.BadRequest(ImportTitle, $"calibrate: '{query["calibrate"].LastOrDefault()}' is not true or false");
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
            ReconciliationReport? report = null;
            CalibrationResult? learned = null;
            if (result.PeriodStart is { } start && result.PeriodEnd is { } end)
                (report, learned) = await ReconcileAndCalibrateAsync(context, store, start, end, calibrate, ct).ConfigureAwait(false);
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
                json.WritePropertyName("calibration");
                if (learned is null)
                    json.WriteNullValue();
                else
                    FocusJson.WriteCalibrationResult(json, learned);
                json.WriteEndObject();
            });
        }
        finally
        {
            File.Delete(temp);
        }
    }

    /// <summary>
    /// Reconciles, and (unless told not to) learns calibration from it: stored, and applied to the live rating engine
    /// from the next segment it prices. One at a time, so two bills cannot both learn from the same calibration.
    /// </summary>
    private static async Task<(ReconciliationReport Report, CalibrationResult? Learned)> ReconcileAndCalibrateAsync(
        HttpContext context, ICostStore store, DateTimeOffset from, DateTimeOffset to, bool learn, CancellationToken ct)
    {
        var pipeline = context.RequestServices.GetService<Rating.CostPipeline>();
        var time = context.RequestServices.GetService<TimeProvider>() ?? TimeProvider.System;
        await s_calibrating.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var current = pipeline?.Calibration ?? await Calibrations.LoadAsync(store, ct).ConfigureAwait(false);
            var terms = pipeline?.Terms ?? context.RequestServices.GetService<PricingTerms>() ?? PricingTerms.None;
            var (report, learned, calibration) = await Calibrations.ReconcileAsync(store, from, to, current, time, learn, terms, ct).ConfigureAwait(false);
            if (pipeline is not null)
                pipeline.Calibration = calibration;
            return (report, learned);
        }
        finally
        {
            s_calibrating.Release();
        }
    }

    private static readonly SemaphoreSlim s_calibrating = new(1, 1);

    /// <summary><c>GET /api/v1/billing/calibration</c>: the factors in force, the reconciled periods, the commitments' unspent part.</summary>
    private static async Task<IResult> CalibrationAsync(HttpContext context, CancellationToken cancellationToken)
    {
        if (ApiJson.RefuseUnknownParameters(context.Request.Query, "Invalid calibration query") is { } unknown)
            return unknown;
        var store = context.RequestServices.GetRequiredService<ICostStore>();
        var pipeline = context.RequestServices.GetService<Rating.CostPipeline>();
        var calibration = pipeline?.Calibration ?? await Calibrations.LoadAsync(store, cancellationToken).ConfigureAwait(false);
        var periods = store is ICalibrationStore kept ? await kept.GetReconciledPeriodsAsync(cancellationToken).ConfigureAwait(false) : [];
        var unspent = pipeline?.UnspentCommitments ?? new Dictionary<string, decimal>();
        return ApiJson.Document(json =>
        {
            json.WriteStartObject();
            FocusJson.WriteFactors(json, "factors", calibration.Factors);
            json.WriteStartArray("reconciled_periods");
            foreach (var p in periods)
            {
                json.WriteStartObject();
                json.WriteString("provider", p.Provider);
                json.WriteString("from", ApiJson.Time(p.From));
                json.WriteString("to", ApiJson.Time(p.To));
                json.WriteString("estimated_cost", FocusJson.Exact(decimal.Round(p.Estimated, 9)));
                json.WriteString("effective_cost", FocusJson.Exact(p.Effective));
                json.WriteString("reconciled_at", ApiJson.Time(p.ReconciledAt));
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteStartObject("unspent_commitments_usd_per_hour");
            foreach (var (plan, dollars) in unspent.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                json.WriteString(plan, FocusJson.Exact(decimal.Round(dollars, 9)));
            json.WriteEndObject();
            json.WriteEndObject();
        });
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
