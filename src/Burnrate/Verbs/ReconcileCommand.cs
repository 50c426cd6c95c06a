using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Burnrate.Billing;
using Burnrate.Pricing;
using Burnrate.Reporting;
using Burnrate.Storage;
using Spectre.Console;

namespace Burnrate.Cli.Verbs;

/// <summary>
/// <c>burnrate reconcile FILE...</c>: imports FOCUS bills into the ledger's database and compares them with what
/// Burnrate estimated for the billed period, per provider, team and resource-day.
/// </summary>
internal static class ReconcileCommand
{
    public static Command Create(CliServices services)
    {
        var files = new Argument<string[]>("FILE")
        {
            Description = "FOCUS 1.0, 1.1 or 1.2 files, CSV or Parquet",
            Arity = ArgumentArity.OneOrMore,
        };
        var format = new Option<string>("--format")
        {
            Description = "Output: table (for people) or json (exact decimals as strings)",
            DefaultValueFactory = _ => "table",
        };
        format.AcceptOnlyFromAmong("table", "json");
        var noCalibrate = new Option<bool>("--no-calibrate")
        {
            Description = "Compare only: do not learn calibration factors from the bill (by default they are learned, stored in the ledger's database, and applied to live rates by the next `burnrate serve`)",
        };

        var command = new Command("reconcile", "Import FOCUS bills and compare them with Burnrate's estimate (per provider, team, resource)")
        {
            files, format, noCalibrate,
        };
        BurnrateCli.SetGuardedAction(command, services, async (parse, cancellationToken) =>
        {
            var paths = parse.GetValue(files) ?? [];
            foreach (var path in paths)
            {
                if (!File.Exists(path))
                    throw new CliUsageException($"FILE: no file at {path}");
            }
            var terms = BurnrateCli.LoadPricingTerms(parse);
            var (store, _) = await BurnrateCli.OpenLedgerAsync(parse, services, create: true,
                "stop it, or upload the file to it with POST /api/v1/billing/focus", cancellationToken).ConfigureAwait(false);
            await using (store.ConfigureAwait(false))
            {
                var results = new List<FocusImportResult>();
                foreach (var path in paths)
                    results.Add(await ImportWithProgressAsync(services, store, path, cancellationToken).ConfigureAwait(false));

                var starts = results.Where(r => r.PeriodStart is not null).Select(r => r.PeriodStart!.Value).ToList();
                var ends = results.Where(r => r.PeriodEnd is not null).Select(r => r.PeriodEnd!.Value).ToList();
                ReconciliationReport? report = null;
                CalibrationResult? learned = null;
                if (starts.Count > 0)
                {
                    var current = await Calibrations.LoadAsync(store, cancellationToken).ConfigureAwait(false);
                    (report, learned, _) = await Calibrations.ReconcileAsync(store, starts.Min(), ends.Max(), current, services.Time,
                        learn: !parse.GetValue(noCalibrate), terms, cancellationToken).ConfigureAwait(false);
                }

                if (parse.GetValue(format) == "json")
                    await WriteJsonAsync(services.Out, results, report, learned).ConfigureAwait(false);
                else
                    WriteTables(Terminal.Create(services.Out), results, report, learned);
            }
            await services.Out.FlushAsync(cancellationToken).ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static async Task<FocusImportResult> ImportWithProgressAsync(CliServices services, ICostStore store, string path, CancellationToken cancellationToken)
    {
        var name = Path.GetFullPath(path);
        var interactive = ReferenceEquals(services.Error, Console.Error) && !Console.IsErrorRedirected;
        try
        {
            if (!interactive)
                return await FocusImporter.ImportAsync(store, path, name, cancellationToken: cancellationToken).ConfigureAwait(false);

            // The bar goes to stderr so that stdout stays the report.
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(services.Error) });
            var file = Markup.Escape(Path.GetFileName(path));
            FocusImportResult? result = null;
            if (store is IFocusImportStore)
            {
                // The store reads, checks and stores the file in one pass inside DuckDB: no rows to count along the way, so
                // the bar shows the phase (reading and checking, then storing) and the rows once they are read.
                await console.Progress().AutoClear(true).StartAsync(async context =>
                {
                    var task = context.AddTask($"{file}: reading and checking", maxValue: 1).IsIndeterminate();
                    var progress = new Progress<long>(rows => task.Description = string.Create(CultureInfo.InvariantCulture, $"{file}: {rows:N0} rows read, storing"));
                    result = await FocusImporter.ImportAsync(store, path, name, progress, cancellationToken).ConfigureAwait(false);
                    task.IsIndeterminate(false).Value = task.MaxValue;
                }).ConfigureAwait(false);
                return result!;
            }

            // Row by row through the reader: a Parquet footer or a count pass gives the bar its length.
            var total = await FocusReader.CountRowsAsync(path, cancellationToken).ConfigureAwait(false);
            await console.Progress().AutoClear(true).StartAsync(async context =>
            {
                var task = context.AddTask(file, maxValue: Math.Max(1, total));
                var progress = new Progress<long>(rows => task.Value = rows);
                result = await FocusImporter.ImportAsync(store, path, name, progress, cancellationToken).ConfigureAwait(false);
                task.Value = task.MaxValue;
            }).ConfigureAwait(false);
            return result!;
        }
        catch (FocusFileException e)
        {
            throw new CliUsageException(e.Message);
        }
    }

    private static async Task WriteJsonAsync(TextWriter writer, List<FocusImportResult> results, ReconciliationReport? report, CalibrationResult? learned)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteStartArray("imports");
            foreach (var result in results)
                FocusJson.WriteImport(json, result);
            json.WriteEndArray();
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
        }
        await writer.WriteAsync(System.Text.Encoding.UTF8.GetString(buffer.ToArray())).ConfigureAwait(false);
        await writer.WriteAsync('\n').ConfigureAwait(false);
    }

    private static void WriteTables(IAnsiConsole console, List<FocusImportResult> results, ReconciliationReport? report, CalibrationResult? learned)
    {
        foreach (var r in results)
        {
            console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{r.File}: FOCUS {r.Version.Name()} {r.Format.ToString().ToUpperInvariant()}, {r.RowsRead} rows read, {r.RowsImported} imported, {r.RowsSkipped} skipped"));
            var providers = new Table().Border(TableBorder.Rounded).AddColumns("provider", "rows", "billed", "effective");
            foreach (var p in r.Providers)
                providers.AddRow(Markup.Escape(p.Provider), p.Rows.ToString(CultureInfo.InvariantCulture), Dollars(p.BilledCost), Dollars(p.EffectiveCost));
            console.Write(providers);
            if (r.Quirks.Count > 0)
            {
                var quirks = new Table().Border(TableBorder.Rounded).AddColumns("quirk", "column", "done", "count", "first rows");
                foreach (var q in r.Quirks)
                {
                    quirks.AddRow(Markup.Escape(q.Kind), Markup.Escape(q.Column.Length > 0 ? q.Column : "-"), q.Action.ToString().ToLowerInvariant(),
                        q.Count.ToString(CultureInfo.InvariantCulture), string.Join(", ", q.FirstRows) + (q.Count > q.FirstRows.Count && q.FirstRows.Count > 0 ? ", ..." : ""));
                }
                console.Write(quirks);
            }
        }
        if (report is null)
        {
            console.WriteLine("nothing imported: no period to reconcile");
            return;
        }
        console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"estimate vs bill, {TimeExpression.Format(report.From)} to {TimeExpression.Format(report.To)}:"));
        console.Write(GroupTable("provider", report.Providers));
        console.Write(GroupTable("team", report.Teams));
        console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"resource-days on both sides: {report.MatchedResourceDays}"));
        var unmatched = new Table().Border(TableBorder.Rounded).AddColumns("side", "provider", "count", "billed", "effective", "estimated", "e.g.");
        foreach (var u in report.UnmatchedBill)
            unmatched.AddRow("bill only", Markup.Escape(u.Provider), u.Count.ToString(CultureInfo.InvariantCulture), MoneyText.Display(u.Billed), MoneyText.Display(u.Effective), "-", Markup.Escape(string.Join(", ", u.Examples)));
        foreach (var u in report.UnmatchedLedger)
            unmatched.AddRow("ledger only", Markup.Escape(u.Provider), u.Count.ToString(CultureInfo.InvariantCulture), "-", "-", MoneyText.Display(u.Estimated), Markup.Escape(string.Join(", ", u.Examples)));
        if (unmatched.Rows.Count > 0)
            console.Write(unmatched);
        else
            console.WriteLine("every bill line matched a ledger resource-day, and every ledger resource-day a bill line");
        if (report.Credits.Count > 0)
        {
            var credits = new Table().Border(TableBorder.Rounded).AddColumns("provider", "credits configured", "credit lines", "on the bill", "missing", "configured");
            foreach (var c in report.Credits)
            {
                credits.AddRow(Markup.Escape(c.Provider), Dollars(c.Configured), c.BillLines.ToString(CultureInfo.InvariantCulture), Dollars(c.Billed),
                    Dollars(c.Missing), Markup.Escape(c.Descriptions.Count > 0 ? string.Join(", ", c.Descriptions) : "-"));
            }
            console.Write(credits);
        }
        if (learned is null)
            return;
        if (learned.Learned.Count > 0)
        {
            console.WriteLine("calibration learned (applied to live rates by the next `burnrate serve`; docs/billing.md#calibration):");
            var factors = new Table().Border(TableBorder.Rounded).AddColumns("provider", "usage", "instance type", "capacity", "estimated", "effective", "factor");
            foreach (var f in learned.Learned)
            {
                factors.AddRow(Markup.Escape(f.Provider), f.Usage.ToString().ToLowerInvariant(), Markup.Escape(f.InstanceType.Length > 0 ? f.InstanceType : "-"),
                    f.Capacity.ToName(), Dollars(f.Estimated), Dollars(f.Effective), f.Factor.ToString("0.######", CultureInfo.InvariantCulture));
            }
            console.Write(factors);
        }
        else
        {
            console.WriteLine("calibration: nothing learned (no usage line matched the ledger)");
        }
        foreach (var s in learned.Skipped)
            console.WriteLine("calibration skipped " + Markup.Escape(s));
    }

    private static Table GroupTable(string name, IReadOnlyList<ReconciledGroup> groups)
    {
        var table = new Table().Border(TableBorder.Rounded).AddColumns(name, "estimated", "billed", "effective", "effective vs estimate", "bill lines");
        foreach (var g in groups)
        {
            table.AddRow(Markup.Escape(g.Key.Length > 0 ? g.Key : "-"), MoneyText.Display(g.Estimated), Dollars(g.Billed), Dollars(g.Effective),
                g.EffectiveVsEstimate is { } e ? (e * 100).ToString("+0.00;-0.00;0.00", CultureInfo.InvariantCulture) + "%" : "-",
                g.Lines.ToString(CultureInfo.InvariantCulture));
        }
        return table;
    }

    private static string Dollars(decimal amount) => MoneyText.Display(Money.FromDollars(amount));
}
