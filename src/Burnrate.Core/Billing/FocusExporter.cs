using System.Globalization;
using System.Text;
using System.Text.Json;
using Burnrate.Storage;
using DuckDB.NET.Data;

namespace Burnrate.Billing;

/// <summary>
/// Writes Burnrate's own ledger as a FOCUS 1.2 cost and usage file (CSV or Parquet), one line per hour or minute
/// and (provider, region, resource, instance type, capacity, component, team, project, workload). Burnrate is the
/// issuer of an estimate, not of a bill: every mandatory column is filled, amounts are the ledger's exact cost
/// (nine decimals), and docs/billing.md says what goes in each column.
/// </summary>
public static class FocusExporter
{
    /// <summary>InvoiceIssuerName of every exported line: it is an estimate, not an invoice.</summary>
    public const string IssuerName = "Burnrate (estimate)";

    /// <summary>The columns written, in order: the 21 mandatory columns of FOCUS 1.2, then the conditional ones Burnrate knows.</summary>
    public static IReadOnlyList<string> Columns { get; } =
    [
        "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodEnd", "BillingPeriodStart",
        "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargePeriodEnd", "ChargePeriodStart", "ContractedCost",
        "EffectiveCost", "InvoiceIssuerName", "ListCost", "PricingQuantity", "PricingUnit", "ProviderName", "PublisherName",
        "ServiceCategory", "ServiceName",
        "ChargeFrequency", "ConsumedQuantity", "ConsumedUnit", "PricingCategory", "RegionId", "ResourceId", "ResourceName",
        "ResourceType", "SubAccountId", "Tags", "x_FocusVersion", "x_BurnrateWorkload", "x_BurnrateComponent", "x_BurnrateStatus",
    ];

    private static readonly string[] s_decimalColumns = ["BilledCost", "ContractedCost", "EffectiveCost", "ListCost", "PricingQuantity", "ConsumedQuantity"];
    private static readonly string[] s_timeColumns = ["BillingPeriodEnd", "BillingPeriodStart", "ChargePeriodEnd", "ChargePeriodStart"];

    private static readonly CostDimension[] s_by =
    [
        CostDimension.Cloud, CostDimension.Region, CostDimension.Resource, CostDimension.InstanceType, CostDimension.Capacity,
        CostDimension.Component, CostDimension.Team, CostDimension.Project, CostDimension.Workload, CostDimension.Cluster,
    ];

    /// <summary>Writes the ledger over [<paramref name="from"/>, <paramref name="to"/>) as FOCUS CSV to <paramref name="output"/>; <paramref name="step"/> (an hour or a minute) is each line's charge period.</summary>
    public static async Task WriteCsvAsync(ICostStore store, DateTimeOffset from, DateTimeOffset to, TimeSpan step, TextWriter output, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(output);
        var rows = await store.QueryCostsAsync(new CostQuery { From = from, To = to, By = s_by, Step = step }, cancellationToken).ConfigureAwait(false);
        // A row inside a period a provider's bill was reconciled over is reconciled; later ones are provisional.
        var reconciled = store is ICalibrationStore kept ? await kept.GetReconciledPeriodsAsync(cancellationToken).ConfigureAwait(false) : [];
        await output.WriteLineAsync(string.Join(',', Columns)).ConfigureAwait(false);
        var line = new StringBuilder();
        var values = new string?[Columns.Count];
        foreach (var row in rows.OrderBy(r => r.BucketStart).ThenBy(r => string.Join('\u0001', r.Keys), StringComparer.Ordinal))
        {
            Fill(values, row, step);
            values[^1] = reconciled.Any(p => p.Provider == row.Keys[0] && p.From <= row.BucketStart && row.BucketStart < p.To) ? "reconciled" : "provisional";
            line.Clear();
            for (var i = 0; i < values.Length; i++)
            {
                if (i > 0)
                    line.Append(',');
                Quote(line, values[i]);
            }
            await output.WriteLineAsync(line.ToString()).ConfigureAwait(false);
        }
        await output.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Writes the ledger over [<paramref name="from"/>, <paramref name="to"/>) as FOCUS Parquet to the file <paramref name="path"/> (amounts DECIMAL(38, 9), periods TIMESTAMP, UTC).</summary>
    public static async Task WriteParquetAsync(ICostStore store, DateTimeOffset from, DateTimeOffset to, TimeSpan step, string path, CancellationToken cancellationToken = default)
    {
        var csv = path + ".csv.tmp";
        try
        {
            await using (var writer = new StreamWriter(csv, append: false, new UTF8Encoding(false)))
                await WriteCsvAsync(store, from, to, step, writer, cancellationToken).ConfigureAwait(false);
            await using var connection = new DuckDBConnection("Data Source=:memory:");
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            using var command = connection.CreateCommand();
            static string Literal(string p) => "'" + p.Replace("'", "''", StringComparison.Ordinal) + "'";
            var casts = string.Join(", ", s_decimalColumns.Select(c => $"CAST({c} AS DECIMAL(38, 9)) AS {c}")
                .Concat(s_timeColumns.Select(c => $"CAST({c} AS TIMESTAMP) AS {c}")));
            command.CommandText = $"COPY (SELECT * REPLACE ({casts}) FROM read_csv({Literal(csv)}, all_varchar = true, header = true)) TO {Literal(path)} (FORMAT parquet)";
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            File.Delete(csv);
        }
    }

    private static void Fill(string?[] v, CostReportRow row, TimeSpan step)
    {
        var k = row.Keys;
        string provider = k[0], region = k[1], resource = k[2], instanceType = k[3], capacity = k[4], component = k[5],
            team = k[6], project = k[7], workload = k[8], cluster = k[9];
        var start = row.BucketStart!.Value.ToUniversalTime();
        var end = start + step;
        var month = new DateTimeOffset(start.Year, start.Month, 1, 0, 0, 0, TimeSpan.Zero);
        var cost = row.Cost.Dollars.ToString("0.000000000", CultureInfo.InvariantCulture);
        var gpuHours = (row.GpuSeconds / 3600m).ToString("0.#########", CultureInfo.InvariantCulture);
        var (serviceName, serviceCategory) = component switch
        {
            "gpu" => ("GPU compute", "Compute"),
            "compute" => ("Compute", "Compute"),
            "storage" => ("Storage", "Storage"),
            "network" => ("Network", "Networking"),
            "commitment" => ("Unused commitment", "Compute"),
            _ => (component, "Other"),
        };
        v[0] = cost;                                     // BilledCost
        v[1] = "burnrate:" + (cluster.Length > 0 ? cluster : "default"); // BillingAccountId
        v[2] = "Burnrate estimate";                      // BillingAccountName
        v[3] = "USD";                                    // BillingCurrency
        v[4] = Time(month.AddMonths(1));                 // BillingPeriodEnd
        v[5] = Time(month);                              // BillingPeriodStart
        v[6] = "Usage";                                  // ChargeCategory
        v[7] = null;                                     // ChargeClass: not a correction
        v[8] = $"Burnrate estimate: {serviceName} on {instanceType} ({capacity})"; // ChargeDescription
        v[9] = Time(end);                                // ChargePeriodEnd
        v[10] = Time(start);                             // ChargePeriodStart
        v[11] = cost;                                    // ContractedCost
        v[12] = cost;                                    // EffectiveCost
        v[13] = IssuerName;                              // InvoiceIssuerName
        v[14] = cost;                                    // ListCost
        v[15] = gpuHours;                                // PricingQuantity
        v[16] = "GPU-Hours";                             // PricingUnit
        v[17] = provider;                                // ProviderName
        v[18] = provider;                                // PublisherName
        v[19] = serviceCategory;                         // ServiceCategory
        v[20] = serviceName;                             // ServiceName
        v[21] = "Usage-Based";                           // ChargeFrequency
        v[22] = gpuHours;                                // ConsumedQuantity
        v[23] = "GPU-Hours";                             // ConsumedUnit
        v[24] = capacity switch { "spot" => "Dynamic", "reserved" => "Committed", _ => "Standard" }; // PricingCategory
        v[25] = region.Length > 0 ? region : null;       // RegionId
        v[26] = resource.Length > 0 ? resource : null;   // ResourceId
        v[27] = resource.Length > 0 ? resource : null;   // ResourceName
        v[28] = instanceType.Length > 0 ? instanceType : null; // ResourceType
        v[29] = team.Length > 0 ? team : null;           // SubAccountId
        v[30] = JsonSerializer.Serialize(new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            ["team"] = team,
            ["project"] = project,
            ["workload"] = workload,
        });                                              // Tags
        v[31] = "1.2";                                   // x_FocusVersion
        v[32] = workload.Length > 0 ? workload : null;   // x_BurnrateWorkload (null: idle)
        v[33] = component;                               // x_BurnrateComponent
    }

    private static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static void Quote(StringBuilder line, string? value)
    {
        if (value is null)
            return; // an unquoted empty field is null
        line.Append('"').Append(value.Replace("\"", "\"\"", StringComparison.Ordinal)).Append('"');
    }
}
