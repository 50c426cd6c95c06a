using System.Globalization;

namespace Burnrate.Agent;

/// <summary>
/// One GPU as a row of <c>nvidia-smi --query-gpu</c> reports it. A reading is null where nvidia-smi printed a placeholder
/// (<c>[N/A]</c>, <c>[Not Supported]</c>, ...) or the output had no such column; <c>utilization.gpu</c> is <c>[N/A]</c>
/// on a GPU in MIG mode (telemetry-formats.md §6).
/// </summary>
/// <param name="Index">nvidia-smi's index; it can change at each boot, so the GPU's identity is <paramref name="Uuid"/>.</param>
/// <param name="Uuid">The GPU UUID (<c>GPU-xxxxxxxx-…</c>).</param>
/// <param name="Name">The product name (<c>NVIDIA H100 80GB HBM3</c>), or empty.</param>
/// <param name="PciBusId">The PCI bus id (<c>00000000:00:09.0</c>), or empty.</param>
/// <param name="UtilizationPercent">utilization.gpu, % (0–100).</param>
/// <param name="MemoryUtilizationPercent">utilization.memory, %.</param>
/// <param name="MemoryUsedMiB">memory.used, MiB.</param>
/// <param name="MemoryFreeMiB">memory.free, MiB.</param>
/// <param name="MemoryTotalMiB">memory.total, MiB.</param>
/// <param name="PowerWatts">power.draw, W.</param>
/// <param name="TemperatureCelsius">temperature.gpu, °C.</param>
/// <param name="SmClockMHz">clocks.sm (clocks.current.sm), MHz.</param>
/// <param name="MigEnabled">mig.mode.current: true for <c>Enabled</c>, false for <c>Disabled</c>, null when not reported.</param>
public sealed record NvidiaSmiGpu(
    int Index,
    string Uuid,
    string Name,
    string PciBusId,
    double? UtilizationPercent,
    double? MemoryUtilizationPercent,
    double? MemoryUsedMiB,
    double? MemoryFreeMiB,
    double? MemoryTotalMiB,
    double? PowerWatts,
    double? TemperatureCelsius,
    double? SmClockMHz,
    bool? MigEnabled);

/// <summary>What <see cref="NvidiaSmiCsv.Parse"/> read: the GPUs, and one line per row or value it could not use.</summary>
public sealed record NvidiaSmiReadout(IReadOnlyList<NvidiaSmiGpu> Gpus, IReadOnlyList<string> Problems);

/// <summary>
/// The query the node agent runs and the parser of its answer, after telemetry-formats.md §6: <c>nvidia-smi
/// --query-gpu=FIELDS --format=csv,noheader,nounits</c>. The parser also reads the other shapes nvidia-smi prints: a
/// header line (with <c>" [unit]"</c> suffixes; its columns then name the fields, in any order, extra ones ignored),
/// values with units (<c>631.95 W</c>, <c>19818 MiB</c>, <c>100 %</c>) when <c>nounits</c> is missing, placeholders
/// (<c>[N/A]</c>, <c>[Not Supported]</c>, <c>[Unknown Error]</c>, ...) as null, and CRLF line ends.
/// </summary>
public static class NvidiaSmiCsv
{
    /// <summary>
    /// The fields asked for, in output order. Only long-standing field names: an unknown field fails the whole command
    /// (§6), so nothing newer than the drivers still in service (<c>clocks.sm</c>, not <c>clocks.current.sm</c>).
    /// </summary>
    public static IReadOnlyList<string> Fields { get; } =
    [
        "index", "uuid", "name", "pci.bus_id", "utilization.gpu", "utilization.memory", "memory.used", "memory.free",
        "memory.total", "power.draw", "temperature.gpu", "clocks.sm", "mig.mode.current",
    ];

    /// <summary>The arguments of the nvidia-smi command line.</summary>
    public static IReadOnlyList<string> Arguments { get; } = ["--query-gpu=" + string.Join(',', Fields), "--format=csv,noheader,nounits"];

    // Header names nvidia-smi prints for the same field under another name (--help-query-gpu lists both).
    private static readonly Dictionary<string, string> s_aliases = new(StringComparer.Ordinal)
    {
        ["gpu_uuid"] = "uuid",
        ["gpu_name"] = "name",
        ["gpu_bus_id"] = "pci.bus_id",
        ["clocks.current.sm"] = "clocks.sm",
    };

    /// <summary>
    /// Reads the output of the query. Rows are in <see cref="Fields"/> order unless the first line is a header, which
    /// then names the columns. A row without a usable index or UUID, or with a wrong number of values, is left out and
    /// reported in <see cref="NvidiaSmiReadout.Problems"/>; an unreadable number is null and reported.
    /// </summary>
    public static NvidiaSmiReadout Parse(string output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var gpus = new List<NvidiaSmiGpu>();
        var problems = new List<string>();
        IReadOnlyList<string> columns = Fields;
        var lineNumber = 0;
        var first = true;
        foreach (var rawLine in output.Split('\n'))
        {
            lineNumber++;
            var line = rawLine.TrimEnd('\r');
            if (string.IsNullOrWhiteSpace(line))
                continue;
            var cells = SplitCells(line);
            if (first)
            {
                first = false;
                if (HeaderColumns(cells) is { } header)
                {
                    columns = header;
                    continue;
                }
            }
            if (cells.Count != columns.Count)
            {
                problems.Add($"line {lineNumber}: {cells.Count} values where {columns.Count} were expected: '{line}'");
                continue;
            }
            if (ReadRow(columns, cells, lineNumber, problems) is { } gpu)
                gpus.Add(gpu);
        }
        return new NvidiaSmiReadout(gpus, problems);
    }

    /// <summary>The field of each column when <paramref name="cells"/> is a header line (it names the index or the UUID), else null.</summary>
    private static List<string>? HeaderColumns(List<string> cells)
    {
        var columns = new List<string>(cells.Count);
        foreach (var cell in cells)
        {
            var name = cell;
            var unit = name.IndexOf(" [", StringComparison.Ordinal);
            if (unit > 0 && name.EndsWith(']'))
                name = name[..unit];
            name = name.Trim().ToLowerInvariant();
            columns.Add(s_aliases.GetValueOrDefault(name, name));
        }
        return columns.Contains("index") || columns.Contains("uuid") ? columns : null;
    }

    private static NvidiaSmiGpu? ReadRow(IReadOnlyList<string> columns, List<string> cells, int lineNumber, List<string> problems)
    {
        string? Cell(string field)
        {
            for (var i = 0; i < columns.Count; i++)
            {
                if (string.Equals(columns[i], field, StringComparison.Ordinal))
                    return Placeholder(cells[i]) ? null : cells[i];
            }
            return null;
        }

        double? Number(string field)
        {
            if (Cell(field) is not { } text)
                return null;
            // Without nounits the value carries its unit after a space: "631.95 W", "19818 MiB", "100 %".
            var space = text.IndexOf(' ', StringComparison.Ordinal);
            var number = space > 0 ? text[..space] : text;
            if (double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && double.IsFinite(value))
                return value;
            problems.Add($"line {lineNumber}: {field} '{text}' is not a number");
            return null;
        }

        var uuid = Cell("uuid");
        if (string.IsNullOrEmpty(uuid) || !int.TryParse(Cell("index"), NumberStyles.None, CultureInfo.InvariantCulture, out var index))
        {
            problems.Add($"line {lineNumber}: no GPU index or UUID: '{string.Join(", ", cells)}'");
            return null;
        }
        var mig = Cell("mig.mode.current");
        return new NvidiaSmiGpu(
            index,
            uuid,
            Cell("name") ?? "",
            Cell("pci.bus_id") ?? "",
            Number("utilization.gpu"),
            Number("utilization.memory"),
            Number("memory.used"),
            Number("memory.free"),
            Number("memory.total"),
            Number("power.draw"),
            Number("temperature.gpu"),
            Number("clocks.sm"),
            mig is null ? null : mig.Equals("Enabled", StringComparison.OrdinalIgnoreCase) ? true
                : mig.Equals("Disabled", StringComparison.OrdinalIgnoreCase) ? false : null);
    }

    /// <summary>nvidia-smi's "no value" cells: <c>[N/A]</c>, <c>[Not Supported]</c>, <c>[Unknown Error]</c>, ... and a bare <c>N/A</c>.</summary>
    private static bool Placeholder(string cell) =>
        cell.Length == 0 || (cell.StartsWith('[') && cell.EndsWith(']')) || cell.Equals("N/A", StringComparison.OrdinalIgnoreCase);

    /// <summary>Splits a CSV line on commas, outside double quotes, trimming the space nvidia-smi puts after each comma.</summary>
    private static List<string> SplitCells(string line)
    {
        var cells = new List<string>();
        var cell = new System.Text.StringBuilder();
        var quoted = false;
        for (var i = 0; i < line.Length; i++)
        {
            var c = line[i];
            if (c == '"')
            {
                if (quoted && i + 1 < line.Length && line[i + 1] == '"')
                {
                    cell.Append('"');
                    i++;
                }
                else
                    quoted = !quoted;
            }
            else if (c == ',' && !quoted)
            {
                cells.Add(cell.ToString().Trim());
                cell.Clear();
            }
            else
                cell.Append(c);
        }
        cells.Add(cell.ToString().Trim());
        return cells;
    }
}
