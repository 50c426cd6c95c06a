using System.Globalization;
using System.Text;
using System.Text.Json;
using Burnrate.Storage;

namespace Burnrate.Reporting;

/// <summary>
/// Machine-readable forms of a <see cref="CostReport"/>. Money is always exact: a string of dollars with nine
/// decimals (<c>"12.345000000"</c>), so no JSON reader rounds it through a double.
/// </summary>
public static class CostReportFormats
{
    /// <summary>
    /// CSV with a header: one column per dimension, <c>bucket</c> (only when the report has a step),
    /// <c>cost_usd</c>, <c>idle_usd</c> (exact, nine decimals), <c>gpu_hours</c> (six decimals).
    /// </summary>
    public static void WriteCsv(CostReport report, TextWriter writer)
    {
        var header = report.By.Select(d => d.ToName()).ToList();
        if (report.Step is not null)
            header.Add("bucket");
        header.AddRange(["cost_usd", "idle_usd", "gpu_hours"]);
        writer.Write(string.Join(',', header));
        writer.Write('\n');
        foreach (var row in report.Rows)
        {
            var cells = row.Keys.Select(Csv).ToList();
            if (report.Step is not null)
                cells.Add(row.BucketStart is { } b ? TimeExpression.Format(b) : "");
            cells.Add(MoneyText.Exact(row.Cost));
            cells.Add(MoneyText.Exact(row.IdleCost));
            cells.Add(GpuHoursText(row.GpuSeconds));
            writer.Write(string.Join(',', cells));
            writer.Write('\n');
        }
    }

    /// <summary>
    /// The CLI's JSON: an array with one object per row; each dimension is a property named after it, then
    /// <c>bucket</c> (RFC 3339 or null), <c>cost_usd</c> and <c>idle_usd</c> (exact strings), <c>gpu_hours</c> (number).
    /// </summary>
    public static void WriteJsonRows(CostReport report, Utf8JsonWriter writer)
    {
        writer.WriteStartArray();
        foreach (var row in report.Rows)
        {
            writer.WriteStartObject();
            for (var i = 0; i < report.By.Count; i++)
                writer.WriteString(report.By[i].ToName(), i < row.Keys.Count ? row.Keys[i] : "");
            WriteRowValues(writer, row);
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
    }

    /// <summary>
    /// The HTTP API's JSON (<c>GET /api/v1/costs</c>):
    /// <c>{from, to, by:[...], step, rows:[{keys:{team:"ml"}, bucket, cost_usd, idle_usd, gpu_hours, gpu_seconds}], total_usd, idle_usd, gpu_hours}</c>.
    /// </summary>
    public static void WriteApiJson(CostReport report, Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        writer.WriteString("from", TimeExpression.Format(report.From));
        writer.WriteString("to", TimeExpression.Format(report.To));
        writer.WriteStartArray("by");
        foreach (var d in report.By)
            writer.WriteStringValue(d.ToName());
        writer.WriteEndArray();
        if (report.Step is { } step)
            writer.WriteString("step", TimeExpression.FormatDuration(step));
        else
            writer.WriteNull("step");
        writer.WriteStartArray("rows");
        foreach (var row in report.Rows)
        {
            writer.WriteStartObject();
            writer.WriteStartObject("keys");
            for (var i = 0; i < report.By.Count; i++)
                writer.WriteString(report.By[i].ToName(), i < row.Keys.Count ? row.Keys[i] : "");
            writer.WriteEndObject();
            WriteRowValues(writer, row);
            writer.WriteNumber("gpu_seconds", row.GpuSeconds);
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
        writer.WriteString("total_usd", MoneyText.Exact(report.Total));
        writer.WriteString("idle_usd", MoneyText.Exact(report.TotalIdle));
        writer.WriteNumber("gpu_hours", CostReport.GpuHours(report.TotalGpuSeconds));
        writer.WriteEndObject();
    }

    /// <summary>The API JSON as a UTF-8 string.</summary>
    public static string ToApiJson(CostReport report)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
            WriteApiJson(report, writer);
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>Reads what <see cref="WriteApiJson"/> wrote back into a report, exactly.</summary>
    /// <exception cref="FormatException">The document is not a costs response.</exception>
    public static CostReport ReadApiJson(string json)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            var root = document.RootElement;
            var by = new List<CostDimension>();
            foreach (var name in root.GetProperty("by").EnumerateArray())
            {
                if (!CostDimensions.TryParse(name.GetString(), out var d))
                    throw new FormatException($"unknown dimension '{name.GetString()}' in response");
                by.Add(d);
            }
            TimeSpan? step = null;
            if (root.TryGetProperty("step", out var stepElement) && stepElement.ValueKind == JsonValueKind.String)
                step = TimeExpression.TryParseDuration(stepElement.GetString(), out var s) ? s : throw new FormatException("bad step in response");
            var rows = new List<CostReportRow>();
            foreach (var row in root.GetProperty("rows").EnumerateArray())
            {
                var keysElement = row.GetProperty("keys");
                var keys = by.Select(d => keysElement.TryGetProperty(d.ToName(), out var k) ? k.GetString() ?? "" : "").ToArray();
                DateTimeOffset? bucket = row.TryGetProperty("bucket", out var b) && b.ValueKind == JsonValueKind.String
                    ? DateTimeOffset.Parse(b.GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal)
                    : null;
                rows.Add(new CostReportRow(
                    keys,
                    bucket,
                    ParseMoney(row.GetProperty("cost_usd")),
                    ParseMoney(row.GetProperty("idle_usd")),
                    row.TryGetProperty("gpu_seconds", out var gs) ? gs.GetDecimal() : row.GetProperty("gpu_hours").GetDecimal() * 3600m));
            }
            return CostReport.Create(
                DateTimeOffset.Parse(root.GetProperty("from").GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal),
                DateTimeOffset.Parse(root.GetProperty("to").GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal),
                by,
                step,
                rows);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or ArgumentException)
        {
            throw new FormatException("the response is not a costs report: " + e.Message, e);
        }
    }

    private static void WriteRowValues(Utf8JsonWriter writer, CostReportRow row)
    {
        if (row.BucketStart is { } bucket)
            writer.WriteString("bucket", TimeExpression.Format(bucket));
        else
            writer.WriteNull("bucket");
        writer.WriteString("cost_usd", MoneyText.Exact(row.Cost));
        writer.WriteString("idle_usd", MoneyText.Exact(row.IdleCost));
        writer.WriteNumber("gpu_hours", CostReport.GpuHours(row.GpuSeconds));
    }

    private static Money ParseMoney(JsonElement element) => Money.FromDollars(element.ValueKind == JsonValueKind.String
        ? decimal.Parse(element.GetString()!, NumberStyles.Number, CultureInfo.InvariantCulture)
        : element.GetDecimal());

    private static string GpuHoursText(decimal gpuSeconds) =>
        CostReport.GpuHours(gpuSeconds).ToString("0.000000", CultureInfo.InvariantCulture);

    private static string Csv(string value) =>
        value.AsSpan().IndexOfAny(",\"\n\r") < 0 ? value : "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
}
