using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Burnrate.Pricing;
using Burnrate.Reporting;
using Spectre.Console;

namespace Burnrate.Cli.Verbs;

/// <summary><c>burnrate prices</c>: the price book in force, filtered and sorted.</summary>
internal static class PricesCommand
{
    public static Command Create(CliServices services)
    {
        var gpu = new Option<string?>("--gpu") { Description = "GPU model, matched as a prefix, case-insensitive (H100 matches H100 and H100-SXM, not A100)", HelpName = "NAME" };
        var cloud = new Option<string?>("--cloud") { Description = "Provider (aws, gcp, azure, lambda, nebius, runpod, coreweave, or a cluster name)", HelpName = "NAME" };
        var region = new Option<string?>("--region") { Description = "Region, e.g. us-east-1", HelpName = "R" };
        var capacity = new Option<string?>("--capacity") { Description = "on_demand, spot or reserved; default: all", HelpName = "TYPE" };
        var format = new Option<string>("--format") { Description = "Output: table or json", DefaultValueFactory = _ => "table" };
        format.AcceptOnlyFromAmong("table", "json");
        var at = new Option<string>("--at")
        {
            Description = "The instant whose prices to show, RFC 3339 or relative (now, -7d)",
            HelpName = "T",
            DefaultValueFactory = _ => "now",
        };

        var command = new Command("prices", "The price book in force: instance prices by cloud, region, instance type and capacity")
        {
            gpu, cloud, region, capacity, format, at,
        };
        BurnrateCli.SetGuardedAction(command, services, async (parse, cancellationToken) =>
        {
            var instant = ReportCommand.ParseTime("--at", parse.GetValue(at)!, services.Time.GetUtcNow());
            CapacityType? capacityFilter = null;
            if (parse.GetValue(capacity) is { } capacityText)
            {
                capacityFilter = CapacityTypes.TryParse(capacityText, out var c)
                    ? c
                    : throw new CliUsageException($"--capacity: '{capacityText}' is not one of on_demand, spot, reserved");
            }
            var prices = Select(services.LoadPriceBook(BurnrateCli.GetConfigFile(parse)).InForce(instant), parse.GetValue(gpu), parse.GetValue(cloud), parse.GetValue(region), capacityFilter);
            if (parse.GetValue(format) == "json")
                await services.Out.WriteAsync(ToJson(prices) + "\n").ConfigureAwait(false);
            else
                WriteTable(prices, instant, Terminal.Create(services.Out));
            await services.Out.FlushAsync(cancellationToken).ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>See <see cref="PriceSelection.Select"/>.</summary>
    internal static IReadOnlyList<InstancePrice> Select(IEnumerable<InstancePrice> prices, string? gpu, string? cloud, string? region, CapacityType? capacity) =>
        PriceSelection.Select(prices, gpu, cloud, region, capacity);

    private static string Rate(decimal dollarsPerHour) => dollarsPerHour.ToString("$#,##0.00#######", CultureInfo.InvariantCulture);

    private static void WriteTable(IReadOnlyList<InstancePrice> prices, DateTimeOffset at, IAnsiConsole console)
    {
        var table = new Table().Border(TableBorder.Rounded);
        table.AddColumn("cloud");
        table.AddColumn("region");
        table.AddColumn("zone");
        table.AddColumn("instance type");
        table.AddColumn("GPUs");
        table.AddColumn("capacity");
        table.AddColumn(new TableColumn("$/h").RightAligned());
        table.AddColumn(new TableColumn("$/GPU-h").RightAligned());
        table.AddColumn("source");
        foreach (var p in prices)
        {
            table.AddRow(
                new Text(p.Provider),
                new Text(p.Region),
                new Text(p.Zone.Length == 0 ? "-" : p.Zone),
                new Text(p.InstanceType),
                new Text(p.GpuCount == 0 ? "-" : $"{p.GpuCount} × {p.GpuModel}"),
                new Text(p.Capacity.ToName()),
                new Text(Rate(p.PricePerHour)),
                new Text(p.GpuCount == 0 ? "-" : Rate(p.GpuPricePerHour)),
                new Text(p.Source));
        }
        table.Caption($"{prices.Count} prices in force at {TimeExpression.Format(at)}");
        console.Write(table);
    }

    /// <summary>An array of objects; prices are JSON numbers written exactly from <see cref="decimal"/>.</summary>
    internal static string ToJson(IReadOnlyList<InstancePrice> prices)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartArray();
            foreach (var p in prices)
            {
                json.WriteStartObject();
                json.WriteString("cloud", p.Provider);
                json.WriteString("region", p.Region);
                json.WriteString("zone", p.Zone);
                json.WriteString("instance_type", p.InstanceType);
                json.WriteString("capacity", p.Capacity.ToName());
                json.WriteNumber("gpu_count", p.GpuCount);
                json.WriteString("gpu_model", p.GpuModel);
                json.WriteNumber("vcpus", p.VCpus);
                json.WriteNumber("memory_gib", p.MemoryGiB);
                json.WriteNumber("price_per_hour", p.PricePerHour);
                json.WriteNumber("gpu_price_per_hour", p.GpuPricePerHour);
                json.WriteString("effective_from", TimeExpression.Format(p.EffectiveFrom));
                json.WriteString("source", p.Source);
                json.WriteEndObject();
            }
            json.WriteEndArray();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }
}
