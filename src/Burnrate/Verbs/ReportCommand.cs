using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Burnrate.Reporting;
using Burnrate.Storage;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Burnrate.Cli.Verbs;

/// <summary><c>burnrate report</c>: cost grouped by dimensions over a range, as a table, CSV or JSON.</summary>
internal static class ReportCommand
{
    internal const string TimeHelp = "RFC 3339 (2025-06-01T00:00:00Z) or relative (now, -15m, -2h, -7d)";

    public static Command Create(CliServices services)
    {
        var by = new Option<string>("--by")
        {
            Description = "Dimensions to group by, comma-separated: " + string.Join(", ", CostDimensions.Names),
            HelpName = "DIM[,DIM]",
            Required = true,
        };
        var from = new Option<string>("--from")
        {
            Description = "Start of the range (inclusive), " + TimeHelp,
            HelpName = "T",
            DefaultValueFactory = _ => "-7d",
        };
        var to = new Option<string>("--to")
        {
            Description = "End of the range (exclusive), " + TimeHelp,
            HelpName = "T",
            DefaultValueFactory = _ => "now",
        };
        var format = new Option<string>("--format")
        {
            Description = "Output: table (for people), csv or json (exact dollars, 9 decimals)",
            DefaultValueFactory = _ => "table",
        };
        format.AcceptOnlyFromAmong("table", "csv", "json");
        var filter = new Option<string[]>("--filter")
        {
            Description = "Keep only rows whose DIM is one of the values; repeat for more dimensions (e.g. --filter team=ml,infra --filter cloud=aws)",
            HelpName = "DIM=V[,V]",
            DefaultValueFactory = _ => [],
        };
        var step = new Option<string?>("--step")
        {
            Description = "Split the range into buckets of this width (whole minutes: 15m, 1h, 1d); default: one bucket",
            HelpName = "D",
        };
        var server = new Option<string?>("--server")
        {
            Description = "Ask a running server (e.g. http://127.0.0.1:9840) instead of opening the data directory",
            HelpName = "URL",
        };

        var apiKeyEnv = ApiKeyOption.Create();
        var command = new Command("report", "Cost by team, project, user, workload, cloud, gpu, ... over a time range")
        {
            by, from, to, format, filter, step, server, apiKeyEnv,
        };
        BurnrateCli.SetGuardedAction(command, services, async (parse, cancellationToken) =>
        {
            var now = services.Time.GetUtcNow();
            var query = new CostQuery
            {
                From = ParseTime("--from", parse.GetValue(from)!, now),
                To = ParseTime("--to", parse.GetValue(to)!, now),
                By = ParseBy(parse.GetValue(by)),
                Step = ParseStep(parse.GetValue(step)),
                Filters = ParseFilters(parse.GetValue(filter) ?? []),
            };
            if (query.From >= query.To)
                throw new CliUsageException($"--from ({TimeExpression.Format(query.From)}) must be before --to ({TimeExpression.Format(query.To)})");

            var report = parse.GetValue(server) is { } serverText
                ? await CostApiClient.GetAsync(services, ParseServer(serverText), ApiKeyOption.Read(services, parse.GetValue(apiKeyEnv)!), query, cancellationToken).ConfigureAwait(false)
                : await QueryLedgerAsync(services, parse, query, cancellationToken).ConfigureAwait(false);

            switch (parse.GetValue(format))
            {
                case "csv":
                    CostReportFormats.WriteCsv(report, services.Out);
                    break;
                case "json":
                    await WriteJsonAsync(report, services.Out).ConfigureAwait(false);
                    break;
                default:
                    WriteTable(report, Terminal.Create(services.Out));
                    break;
            }
            await services.Out.FlushAsync(cancellationToken).ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static async Task<CostReport> QueryLedgerAsync(CliServices services, ParseResult parse, CostQuery query, CancellationToken cancellationToken)
    {
        var (store, _) = await BurnrateCli.OpenLedgerAsync(parse, services, create: false,
            "ask it instead with --server http://127.0.0.1:9840 (or the address it printed)", cancellationToken).ConfigureAwait(false);
        await using (store.ConfigureAwait(false))
            return await CostReport.RunAsync(store, query, cancellationToken).ConfigureAwait(false);
    }

    internal static DateTimeOffset ParseTime(string option, string text, DateTimeOffset now) =>
        TimeExpression.TryParse(text, now, out var value)
            ? value
            : throw new CliUsageException($"{option}: '{text}' is not a time; use {TimeHelp}");

    private static IReadOnlyList<CostDimension> ParseBy(string? text)
    {
        if (!CostQueryText.TryParseDimensions(text, out var dimensions, out var error))
            throw new CliUsageException("--by: " + error);
        if (dimensions.Count == 0)
            throw new CliUsageException("--by: name at least one dimension: " + string.Join(", ", CostDimensions.Names));
        return dimensions;
    }

    private static TimeSpan? ParseStep(string? text)
    {
        if (text is null)
            return null;
        if (!TimeExpression.TryParseDuration(text, out var step) || step.Ticks % TimeSpan.TicksPerMinute != 0)
            throw new CliUsageException($"--step: '{text}' is not a whole number of minutes (e.g. 15m, 1h, 1d)");
        return step;
    }

    private static IReadOnlyDictionary<CostDimension, IReadOnlyList<string>> ParseFilters(string[] items)
    {
        var filters = new Dictionary<CostDimension, List<string>>();
        foreach (var item in items)
        {
            if (!CostQueryText.TryAddFilter(item, '=', ',', filters, out var error))
                throw new CliUsageException("--filter: " + error);
        }
        return CostQueryText.Freeze(filters);
    }

    internal static Uri ParseServer(string text) =>
        Uri.TryCreate(text, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)
            ? uri
            : throw new CliUsageException($"--server: '{text}' is not an http(s) URL (e.g. http://127.0.0.1:9840)");

    private static async Task WriteJsonAsync(CostReport report, TextWriter writer)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
            CostReportFormats.WriteJsonRows(report, json);
        await writer.WriteAsync(System.Text.Encoding.UTF8.GetString(buffer.ToArray())).ConfigureAwait(false);
        await writer.WriteAsync('\n').ConfigureAwait(false);
    }

    internal static void WriteTable(CostReport report, IAnsiConsole console)
    {
        var table = new Table().Border(TableBorder.Rounded);
        foreach (var dimension in report.By)
            table.AddColumn(new TableColumn(dimension.ToName()));
        if (report.Step is not null)
            table.AddColumn(new TableColumn("bucket"));
        table.AddColumn(new TableColumn("cost").RightAligned());
        table.AddColumn(new TableColumn("idle").RightAligned());
        table.AddColumn(new TableColumn("GPU-hours").RightAligned());
        table.AddColumn(new TableColumn("share").RightAligned());

        var total = report.Total;
        foreach (var row in report.Rows)
        {
            var cells = new List<IRenderable>();
            for (var i = 0; i < report.By.Count; i++)
                cells.Add(new Text(i < row.Keys.Count && row.Keys[i].Length > 0 ? row.Keys[i] : "-"));
            if (report.Step is not null)
                cells.Add(new Text(row.BucketStart is { } b ? TimeExpression.Format(b) : "-"));
            cells.Add(new Text(MoneyText.Display(row.Cost)));
            cells.Add(new Text(MoneyText.Display(row.IdleCost)));
            cells.Add(new Text(GpuHours(row.GpuSeconds)));
            cells.Add(new Text(Share(row.Cost, total)));
            table.AddRow(cells);
        }

        var totals = new List<IRenderable> { new Markup("[bold]total[/]") };
        for (var i = 1; i < report.By.Count + (report.Step is null ? 0 : 1); i++)
            totals.Add(new Text(""));
        totals.Add(new Markup("[bold]" + Markup.Escape(MoneyText.Display(total)) + "[/]"));
        totals.Add(new Text(MoneyText.Display(report.TotalIdle)));
        totals.Add(new Text(GpuHours(report.TotalGpuSeconds)));
        totals.Add(new Text(total.Nanos == 0 ? "-" : "100.0%"));
        table.AddRow(totals);
        table.Caption($"{TimeExpression.Format(report.From)} to {TimeExpression.Format(report.To)}, {report.Rows.Count} rows");
        console.Write(table);
    }

    private static string GpuHours(decimal gpuSeconds) =>
        decimal.Round(gpuSeconds / 3600m, 2, MidpointRounding.AwayFromZero).ToString("#,##0.00", CultureInfo.InvariantCulture);

    private static string Share(Money part, Money total) =>
        total.Nanos == 0 ? "-" : (100m * part.Nanos / total.Nanos).ToString("0.0", CultureInfo.InvariantCulture) + "%";
}
