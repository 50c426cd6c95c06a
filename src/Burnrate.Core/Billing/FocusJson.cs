using System.Globalization;
using System.Text.Json;

namespace Burnrate.Billing;

/// <summary>
/// The JSON shape of imports and reconciliations, shared by <c>burnrate reconcile --format json</c> and the API.
/// Money is an exact decimal string (ledger amounts with nine decimals, bill sums as the file wrote them).
/// </summary>
public static class FocusJson
{
    /// <summary>Writes one import's outcome as an object.</summary>
    public static void WriteImport(Utf8JsonWriter json, FocusImportResult result)
    {
        ArgumentNullException.ThrowIfNull(json);
        ArgumentNullException.ThrowIfNull(result);
        json.WriteStartObject();
        json.WriteString("file", result.File);
        json.WriteString("format", result.Format == FocusFileFormat.Parquet ? "parquet" : "csv");
        json.WriteString("focus_version", result.Version.Name());
        json.WriteNumber("rows_read", result.RowsRead);
        json.WriteNumber("rows_imported", result.RowsImported);
        json.WriteNumber("rows_skipped", result.RowsSkipped);
        if (result.PeriodStart is { } start)
            json.WriteString("period_start", start.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
        if (result.PeriodEnd is { } end)
            json.WriteString("period_end", end.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
        json.WriteStartArray("providers");
        foreach (var p in result.Providers)
        {
            json.WriteStartObject();
            json.WriteString("provider", p.Provider);
            json.WriteNumber("rows", p.Rows);
            json.WriteString("billed_cost", Exact(p.BilledCost));
            json.WriteString("effective_cost", Exact(p.EffectiveCost));
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteStartArray("quirks");
        foreach (var q in result.Quirks)
        {
            json.WriteStartObject();
            json.WriteString("kind", q.Kind);
            json.WriteString("column", q.Column);
            json.WriteString("action", q.Action.ToString().ToLowerInvariant());
            json.WriteNumber("count", q.Count);
            json.WriteStartArray("first_rows");
            foreach (var row in q.FirstRows)
                json.WriteNumberValue(row);
            json.WriteEndArray();
            json.WriteString("detail", q.Detail);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteEndObject();
    }

    /// <summary>Writes a reconciliation as an object.</summary>
    public static void WriteReconciliation(Utf8JsonWriter json, ReconciliationReport report)
    {
        ArgumentNullException.ThrowIfNull(json);
        ArgumentNullException.ThrowIfNull(report);
        json.WriteStartObject();
        json.WriteString("from", report.From.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
        json.WriteString("to", report.To.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
        Groups(json, "providers", "provider", report.Providers);
        Groups(json, "teams", "team", report.Teams);
        json.WriteNumber("matched_resource_days", report.MatchedResourceDays);
        Unmatched(json, "unmatched_bill", report.UnmatchedBill);
        Unmatched(json, "unmatched_ledger", report.UnmatchedLedger);
        json.WriteStartArray("credits");
        foreach (var c in report.Credits)
        {
            json.WriteStartObject();
            json.WriteString("provider", c.Provider);
            json.WriteString("configured", Exact(c.Configured));
            json.WriteString("billed", Exact(c.Billed));
            json.WriteNumber("bill_lines", c.BillLines);
            json.WriteString("missing", Exact(c.Missing));
            json.WriteStartArray("descriptions");
            foreach (var d in c.Descriptions)
                json.WriteStringValue(d);
            json.WriteEndArray();
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteEndObject();
    }

    /// <summary>An exact decimal as invariant text, without exponent or trailing zeros beyond what it holds.</summary>
    public static string Exact(decimal value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>What a reconciliation taught: <c>{"learned": [factor...], "skipped": [text...]}</c>.</summary>
    public static void WriteCalibrationResult(Utf8JsonWriter json, CalibrationResult result)
    {
        ArgumentNullException.ThrowIfNull(json);
        ArgumentNullException.ThrowIfNull(result);
        json.WriteStartObject();
        WriteFactors(json, "learned", result.Learned);
        json.WriteStartArray("skipped");
        foreach (var s in result.Skipped)
            json.WriteStringValue(s);
        json.WriteEndArray();
        json.WriteEndObject();
    }

    /// <summary>An array property of calibration factors.</summary>
    public static void WriteFactors(Utf8JsonWriter json, string name, IReadOnlyList<Pricing.Terms.CalibrationFactor> factors)
    {
        ArgumentNullException.ThrowIfNull(json);
        ArgumentNullException.ThrowIfNull(factors);
        json.WriteStartArray(name);
        foreach (var f in factors)
        {
            json.WriteStartObject();
            json.WriteString("provider", f.Provider);
            json.WriteString("usage", f.Usage == Pricing.Terms.CalibratedUsage.Network ? "network" : "compute");
            json.WriteString("instance_type", f.InstanceType);
            json.WriteString("capacity_type", Pricing.CapacityTypes.ToName(f.Capacity));
            json.WriteString("factor", Exact(f.Factor));
            json.WriteString("estimated_cost", Exact(decimal.Round(f.Estimated, 9)));
            json.WriteString("effective_cost", Exact(f.Effective));
            json.WriteString("from", Time(f.From));
            json.WriteString("to", Time(f.To));
            json.WriteString("learned_at", Time(f.LearnedAt));
            json.WriteEndObject();
        }
        json.WriteEndArray();
    }

    private static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static void Groups(Utf8JsonWriter json, string name, string keyName, IReadOnlyList<ReconciledGroup> groups)
    {
        json.WriteStartArray(name);
        foreach (var g in groups)
        {
            json.WriteStartObject();
            json.WriteString(keyName, g.Key);
            json.WriteNumber("bill_lines", g.Lines);
            json.WriteString("estimated_cost", g.Estimated.ToString(9));
            json.WriteString("billed_cost", Exact(g.Billed));
            json.WriteString("effective_cost", Exact(g.Effective));
            if (g.EffectiveVsEstimate is { } e)
                json.WriteString("effective_vs_estimate", Exact(decimal.Round(e, 12)));
            else
                json.WriteNull("effective_vs_estimate");
            if (g.BilledVsEstimate is { } b)
                json.WriteString("billed_vs_estimate", Exact(decimal.Round(b, 12)));
            else
                json.WriteNull("billed_vs_estimate");
            json.WriteEndObject();
        }
        json.WriteEndArray();
    }

    private static void Unmatched(Utf8JsonWriter json, string name, IReadOnlyList<UnmatchedLines> lines)
    {
        json.WriteStartArray(name);
        foreach (var u in lines)
        {
            json.WriteStartObject();
            json.WriteString("provider", u.Provider);
            json.WriteNumber("count", u.Count);
            json.WriteString("billed_cost", u.Billed.ToString(9));
            json.WriteString("effective_cost", u.Effective.ToString(9));
            json.WriteString("estimated_cost", u.Estimated.ToString(9));
            json.WriteStartArray("examples");
            foreach (var e in u.Examples)
                json.WriteStringValue(e);
            json.WriteEndArray();
            json.WriteEndObject();
        }
        json.WriteEndArray();
    }
}
