using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Burnrate.Pricing.Internal;
using Microsoft.Extensions.Logging;

namespace Burnrate.Pricing;

/// <summary>
/// Loads SkyPilot <c>vms.csv</c> catalogs (as found under <c>~/.sky/catalogs/v*/&lt;cloud&gt;/</c>) into price
/// entries, repairing or skipping what is wrong and recording each repair as a <see cref="CatalogIssue"/>.
/// </summary>
/// <remarks>
/// Columns are found by header name (their order differs per cloud). Quirks and what is done (docs/pricing.md):
/// CRLF line ends are read as LF; a row without <c>Price</c> is skipped; a row without <c>SpotPrice</c> makes no spot
/// entry; a spot price above on-demand is capped at on-demand (no provider bills a spot VM above its on-demand list
/// price: AWS caps the default max price there, GCP Spot VMs are priced below on-demand); an
/// <c>AcceleratorCount</c> that disagrees with the instance name (<c>gpu_8x_…</c>, <c>a2-highgpu-8g</c>, a known
/// Azure ND size) or with GpuInfo's <c>Count</c> is corrected from those; GCP GPU host rows are joined with the
/// accelerator rows of the same zone (instance = machine + accelerators, GPU part = accelerator price / count).
/// </remarks>
public sealed partial class SkyPilotCatalogLoader
{
    private readonly ILogger? _logger;

    /// <summary>A loader that logs a summary per file (and each issue at Debug) to <paramref name="logger"/>.</summary>
    public SkyPilotCatalogLoader(ILogger? logger = null) => _logger = logger;

    /// <summary>Loads one <c>vms.csv</c>.</summary>
    /// <param name="path">The file.</param>
    /// <param name="provider">Lower-case provider; by default the name of the file's folder (<c>…/aws/vms.csv</c> → <c>aws</c>).</param>
    /// <param name="effectiveFrom">When the prices took effect; by default the file's last write time.</param>
    public SkyPilotCatalog Load(string path, string? provider = null, DateTimeOffset? effectiveFrom = null) =>
        Load([path], provider, effectiveFrom);

    /// <summary>
    /// Loads several files together, so that GCP host rows in one file join the accelerator rows in another
    /// (both of the same provider).
    /// </summary>
    public SkyPilotCatalog Load(IReadOnlyList<string> paths, string? provider = null, DateTimeOffset? effectiveFrom = null)
    {
        ArgumentNullException.ThrowIfNull(paths);
        var prices = new List<InstancePrice>();
        var issues = new List<CatalogIssue>();
        var gcpRows = new List<Row>();
        var perFile = new List<(string File, string Provider, int Rows, int FirstPrice, int FirstIssue)>();
        foreach (var path in paths)
        {
            var fileProvider = (provider ?? InferProvider(path)).ToLowerInvariant();
            var when = effectiveFrom ?? new DateTimeOffset(File.GetLastWriteTimeUtc(path), TimeSpan.Zero);
            var display = DisplayName(path);
            var (firstPrice, firstIssue) = (prices.Count, issues.Count);
            var rows = ReadRows(File.ReadAllText(path, Encoding.UTF8), display, fileProvider, when, issues);
            foreach (var row in rows)
            {
                if (fileProvider == "gcp")
                    gcpRows.Add(row);
                else
                    AddWholeRow(row, prices, issues);
            }

            perFile.Add((display, fileProvider, rows.Count, firstPrice, firstIssue));
        }

        if (gcpRows.Count > 0)
            JoinGcp(gcpRows, prices, issues);

        issues.Sort(static (a, b) =>
        {
            var c = string.CompareOrdinal(a.File, b.File);
            return c != 0 ? c : a.Line.CompareTo(b.Line);
        });
        if (_logger is not null && _logger.IsEnabled(LogLevel.Information))
            Log(perFile, prices, issues);
        return new SkyPilotCatalog(prices, issues);
    }

    /// <summary>The provider a SkyPilot catalog path belongs to: the name of its folder, lower-case.</summary>
    public static string InferProvider(string path)
    {
        var folder = Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(path)));
        if (string.IsNullOrEmpty(folder))
            throw new ArgumentException($"Cannot tell the provider of {path}: pass it explicitly.", nameof(path));
        return folder.ToLowerInvariant();
    }

    private void Log(List<(string File, string Provider, int Rows, int FirstPrice, int FirstIssue)> perFile, List<InstancePrice> prices, List<CatalogIssue> issues)
    {
        foreach (var (file, provider, rows, _, _) in perFile)
        {
            var byKind = new SortedDictionary<CatalogIssueKind, int>();
            var madeHere = 0;
            foreach (var issue in issues)
            {
                if (issue.File != file)
                    continue;
                byKind[issue.Kind] = byKind.GetValueOrDefault(issue.Kind) + 1;
                if (_logger!.IsEnabled(LogLevel.Debug))
                    PricingLog.SkyPilotIssue(_logger, issue.File, issue.Line, issue.Kind, issue.Message);
            }

            foreach (var price in prices)
                if (price.Source.StartsWith("skypilot:" + file + ":", StringComparison.Ordinal))
                    madeHere++;
            var summary = byKind.Count == 0 ? "none" : string.Join(", ", byKind.Select(p => $"{p.Key} x{p.Value}"));
#pragma warning disable CA1873 // Log() runs only when Information is enabled (checked by the caller).
            PricingLog.SkyPilotLoaded(_logger!, file, provider, rows, madeHere, byKind.Values.Sum(), summary);
#pragma warning restore CA1873
        }
    }

    /// <summary>One usable row, numbers parsed, accelerator count already checked.</summary>
    private sealed record Row(
        string File, int Line, string Provider, string InstanceType, string GpuModel, int GpuCount, int VCpus, decimal MemoryGiB,
        string Region, string Zone, decimal Price, decimal? SpotPrice, DateTimeOffset EffectiveFrom)
    {
        public string Source => $"skypilot:{File}:{Line}";
    }

    private static List<Row> ReadRows(string text, string file, string provider, DateTimeOffset effectiveFrom, List<CatalogIssue> issues)
    {
        var crlf = text.IndexOf("\r\n", StringComparison.Ordinal);
        if (crlf >= 0)
        {
            var line = 1;
            for (var i = 0; i < crlf; i++)
                if (text[i] == '\n')
                    line++;
            issues.Add(new(file, line, CatalogIssueKind.CrlfLineEnds, "CRLF line ends: read as LF (no '\\r' kept in any field)"));
        }

        var records = CsvRecords.Read(text);
        if (records.Count == 0)
            throw new CatalogFormatException(file, 1, "empty file: expected a SkyPilot vms.csv header");
        var header = records[0].Fields;
        var columns = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < header.Length; i++)
            columns[header[i].Trim()] = i;
        foreach (var required in new[] { "InstanceType", "Region", "Price" })
            if (!columns.ContainsKey(required))
                throw new CatalogFormatException(file, 1, $"no '{required}' column in the header ({string.Join(",", header)})");

        var rows = new List<Row>(records.Count);
        for (var r = 1; r < records.Count; r++)
        {
            var (line, fields) = records[r];
            if (fields.Length != header.Length)
            {
                issues.Add(new(file, line, CatalogIssueKind.MalformedRow, $"{fields.Length} fields where the header has {header.Length}: row skipped"));
                continue;
            }

            string Get(string column) => columns.TryGetValue(column, out var i) ? fields[i].Trim() : "";
            var instanceType = Get("InstanceType");
            var gpuModel = Get("AcceleratorName");
            var region = Get("Region");
            var zone = Get("AvailabilityZone");
            var what = instanceType.Length > 0 ? instanceType : $"accelerator {gpuModel}";
            if ((instanceType.Length == 0 && gpuModel.Length == 0) || region.Length == 0)
            {
                issues.Add(new(file, line, CatalogIssueKind.MalformedRow, "no instance type (nor accelerator) or no region: row skipped"));
                continue;
            }

            if (!TryNumber(Get("Price"), out var price))
            {
                issues.Add(new(file, line, CatalogIssueKind.MissingPrice,
                    $"{what} in {Where(region, zone)} has no on-demand Price ('{Get("Price")}'): row skipped"));
                continue;
            }

            decimal? spot = null;
            var spotText = Get("SpotPrice");
            if (TryNumber(spotText, out var spotValue))
            {
                spot = spotValue;
                if (spotValue > price)
                {
                    spot = price;
                    issues.Add(new(file, line, CatalogIssueKind.SpotAboveOnDemand,
                        $"{what} in {Where(region, zone)}: SpotPrice {spotValue} above on-demand {price}: spot capped at {price}"));
                }
            }
            else
            {
                issues.Add(new(file, line, CatalogIssueKind.MissingSpotPrice,
                    $"{what} in {Where(region, zone)} has no SpotPrice: no spot entry made"));
            }

            // GCP accelerator rows leave vCPUs and memory empty: empty reads as 0, anything else must be a number.
            if (!TryCount(Get("AcceleratorCount"), out var listedCount)
                || !TryOptionalNumber(Get("vCPUs"), out var vcpus)
                || !TryOptionalNumber(Get("MemoryGiB"), out var memory))
            {
                issues.Add(new(file, line, CatalogIssueKind.MalformedRow,
                    $"{what}: AcceleratorCount '{Get("AcceleratorCount")}', vCPUs '{Get("vCPUs")}' or MemoryGiB '{Get("MemoryGiB")}' is not a number: row skipped"));
                continue;
            }

            var count = listedCount;
            if (instanceType.Length > 0 && gpuModel.Length > 0)
                count = CheckCount(instanceType, Get("GpuInfo"), listedCount, file, line, issues);

            rows.Add(new Row(file, line, provider, instanceType, gpuModel, count, (int)vcpus, memory,
                region, zone, price, spot, effectiveFrom));
        }

        return rows;
    }

    private static string Where(string region, string zone) => zone.Length > 0 ? $"{region}/{zone}" : region;

    /// <summary>
    /// The accelerator count to believe. The instance name is what the provider sells, so it wins; then GpuInfo's
    /// structured <c>Count</c>; the <c>AcceleratorCount</c> column last (it is the one found wrong).
    /// </summary>
    private static int CheckCount(string instanceType, string gpuInfo, int listed, string file, int line, List<CatalogIssue> issues)
    {
        int? fromName = GpuCountFromName(instanceType);
        int? fromInfo = GpuCountFromInfo(gpuInfo);
        var (trusted, source) = fromName is { } n ? (n, "the instance name") : fromInfo is { } g ? (g, "GpuInfo's Count") : (listed, "");
        if (trusted != listed)
        {
            issues.Add(new(file, line, CatalogIssueKind.AcceleratorCountFixed,
                $"{instanceType}: AcceleratorCount {listed} disagrees with {source} ({trusted}): count set to {trusted}"));
        }

        return trusted;
    }

    /// <summary>Azure sizes whose name does not spell the GPU count (the 96-vCPU ND sizes carry 8 GPUs).</summary>
    private static readonly Dictionary<string, int> s_knownGpuCounts = new(StringComparer.OrdinalIgnoreCase)
    {
        ["Standard_ND96isr_H100_v5"] = 8,
        ["Standard_ND96isr_H200_v5"] = 8,
        ["Standard_ND96isr_MI300X_v5"] = 8,
        ["Standard_ND96asr_v4"] = 8,
        ["Standard_ND96amsr_A100_v4"] = 8,
        ["Standard_ND40rs_v2"] = 8,
    };

    internal static int? GpuCountFromName(string instanceType)
    {
        if (s_knownGpuCounts.TryGetValue(instanceType, out var known))
            return known;
        var m = LeadingCountRegex().Match(instanceType);
        if (!m.Success)
            m = NebiusCountRegex().Match(instanceType);
        if (!m.Success)
            m = GcpCountRegex().Match(instanceType);
        return m.Success ? int.Parse(m.Groups[1].ValueSpan, CultureInfo.InvariantCulture) : null;
    }

    internal static int? GpuCountFromInfo(string gpuInfo)
    {
        var total = 0m;
        var found = false;
        foreach (Match m in GpuInfoCountRegex().Matches(gpuInfo))
        {
            total += decimal.Parse(m.Groups[1].ValueSpan, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture);
            found = true;
        }

        return found && total > 0 && total == decimal.Truncate(total) ? (int)total : null;
    }

    // gpu_8x_h100_sxm5 (Lambda), 8x_H100-80GB_SECURE (RunPod).
    [GeneratedRegex(@"^(?:gpu_)?(\d+)x_", RegexOptions.CultureInvariant)]
    private static partial Regex LeadingCountRegex();

    // gpu-h100-sxm_8gpu-128vcpu-1600gb (Nebius).
    [GeneratedRegex(@"_(\d+)gpu-", RegexOptions.CultureInvariant)]
    private static partial Regex NebiusCountRegex();

    // a2-highgpu-8g, a3-megagpu-8g, a3-ultragpu-8g-nolssd (GCP); g2-standard-8 counts vCPUs, not GPUs, so not g2.
    [GeneratedRegex(@"^a\d-[a-z]+-(\d+)g(?:-|$)", RegexOptions.CultureInvariant)]
    private static partial Regex GcpCountRegex();

    // GpuInfo is a Python dict literal: {'Gpus': [{'Name': 'A100', 'Count': 8, ...}], ...}.
    [GeneratedRegex(@"'Count':\s*([0-9]+(?:\.[0-9]+)?)", RegexOptions.CultureInvariant)]
    private static partial Regex GpuInfoCountRegex();

    private static bool TryNumber(string text, out decimal value) =>
        decimal.TryParse(text, NumberStyles.AllowDecimalPoint | NumberStyles.AllowExponent, CultureInfo.InvariantCulture, out value) && value >= 0;

    private static bool TryOptionalNumber(string text, out decimal value)
    {
        value = 0m;
        return text.Length == 0 || TryNumber(text, out value);
    }

    private static bool TryCount(string text, out int count)
    {
        count = 0;
        if (text.Length == 0)
            return true;
        if (!TryNumber(text, out var value) || value != decimal.Truncate(value))
            return false;
        count = (int)value;
        return true;
    }

    private static void AddWholeRow(Row row, List<InstancePrice> prices, List<CatalogIssue> issues)
    {
        if (row.InstanceType.Length == 0)
        {
            issues.Add(new(row.File, row.Line, CatalogIssueKind.MalformedRow, $"accelerator row for {row.GpuModel} outside GCP: skipped"));
            return;
        }

        prices.Add(Make(row, CapacityType.OnDemand, row.Price, PriceSplit.GpuPricePerHour(row.Price, row.GpuCount, row.VCpus, row.MemoryGiB), row.Source));
        if (row.SpotPrice is { } spot)
            prices.Add(Make(row, CapacityType.Spot, spot, PriceSplit.GpuPricePerHour(spot, row.GpuCount, row.VCpus, row.MemoryGiB), row.Source));
    }

    private static InstancePrice Make(Row row, CapacityType capacity, decimal price, decimal gpuPrice, string source) =>
        new(row.Provider, row.Region, row.Zone, row.InstanceType, capacity, price, gpuPrice, row.GpuCount, row.GpuModel,
            row.VCpus, row.MemoryGiB, row.EffectiveFrom, source);

    /// <summary>GCP GPU machine families whose GPUs are billed as separate accelerator SKUs.</summary>
    internal static (string Model, int Count)? GcpAccelerator(string instanceType)
    {
        var count = GpuCountFromName(instanceType);
        if (instanceType.StartsWith("a2-highgpu-", StringComparison.Ordinal) || instanceType.StartsWith("a2-megagpu-", StringComparison.Ordinal))
            return ("A100", count ?? 0);
        if (instanceType.StartsWith("a2-ultragpu-", StringComparison.Ordinal))
            return ("A100-80GB", count ?? 0);
        if (instanceType.StartsWith("a3-highgpu-", StringComparison.Ordinal) || instanceType.StartsWith("a3-edgegpu-", StringComparison.Ordinal))
            return ("H100", count ?? 0);
        if (instanceType.StartsWith("a3-megagpu-", StringComparison.Ordinal))
            return ("H100-MEGA", count ?? 0);
        if (instanceType.StartsWith("a3-ultragpu-", StringComparison.Ordinal))
            return ("H200", count ?? 0);
        if (instanceType.StartsWith("a4-highgpu-", StringComparison.Ordinal))
            return ("B200", count ?? 0);
        if (instanceType.StartsWith("g2-standard-", StringComparison.Ordinal)
            && int.TryParse(instanceType.AsSpan("g2-standard-".Length), NumberStyles.None, CultureInfo.InvariantCulture, out var vcpus))
        {
            // G2 shapes: 4-32 vCPUs carry one L4, 24 two, 48 four, 96 eight.
            return ("L4", vcpus switch { 24 => 2, 48 => 4, 96 => 8, _ => 1 });
        }

        return null;
    }

    private static void JoinGcp(List<Row> rows, List<InstancePrice> prices, List<CatalogIssue> issues)
    {
        var accelerators = new Dictionary<(string Region, string Zone, string Model, int Count), Row>();
        foreach (var row in rows)
            if (row.InstanceType.Length == 0)
                accelerators.TryAdd((row.Region.ToLowerInvariant(), row.Zone.ToLowerInvariant(), row.GpuModel, row.GpuCount), row);

        var used = new HashSet<Row>(ReferenceEqualityComparer.Instance);
        foreach (var host in rows)
        {
            if (host.InstanceType.Length == 0)
                continue;
            if (GcpAccelerator(host.InstanceType) is not { } accel || accel.Count == 0)
            {
                AddWholeRow(host, prices, issues);
                continue;
            }

            if (!accelerators.TryGetValue((host.Region.ToLowerInvariant(), host.Zone.ToLowerInvariant(), accel.Model, accel.Count), out var gpu))
            {
                issues.Add(new(host.File, host.Line, CatalogIssueKind.GpuHostWithoutAccelerator,
                    $"{host.InstanceType} in {Where(host.Region, host.Zone)}: no {accel.Model} x{accel.Count} accelerator row to join: host skipped (its price leaves out the GPUs)"));
                continue;
            }

            used.Add(gpu);
            var joined = host with { GpuModel = accel.Model, GpuCount = accel.Count };
            var source = $"{host.Source}+{gpu.File}:{gpu.Line}";
            var (onDemand, gpuEach) = PriceSplit.PricedApart(host.Price, gpu.Price / accel.Count, accel.Count);
            prices.Add(Make(joined, CapacityType.OnDemand, onDemand, gpuEach, source));
            if (host.SpotPrice is { } hostSpot && gpu.SpotPrice is { } gpuSpot)
            {
                var (spot, gpuSpotEach) = PriceSplit.PricedApart(hostSpot, gpuSpot / accel.Count, accel.Count);
                prices.Add(Make(joined, CapacityType.Spot, spot, gpuSpotEach, source));
            }

            issues.Add(new(host.File, host.Line, CatalogIssueKind.GpuPricedApart,
                $"{host.InstanceType} in {Where(host.Region, host.Zone)}: machine {host.Price} + {accel.Model} x{accel.Count} {gpu.Price} ({gpu.File}:{gpu.Line}) = {onDemand}"));
        }

        foreach (var row in rows)
        {
            if (row.InstanceType.Length == 0 && !used.Contains(row))
            {
                issues.Add(new(row.File, row.Line, CatalogIssueKind.UnusedAcceleratorRow,
                    $"accelerator {row.GpuModel} x{row.GpuCount} in {Where(row.Region, row.Zone)} joins no host row in the loaded files: no entry made"));
            }
        }
    }

    /// <summary><c>v9/aws/vms.csv</c> for a path under a SkyPilot catalog tree, else <c>&lt;folder&gt;/&lt;file&gt;</c>.</summary>
    internal static string DisplayName(string path)
    {
        var parts = Path.GetFullPath(path).Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries);
        for (var i = parts.Length - 3; i >= 0; i--)
        {
            if (parts[i].Length > 1 && parts[i][0] == 'v' && parts[i].AsSpan(1).IndexOfAnyExceptInRange('0', '9') < 0)
                return string.Join('/', parts[i..]);
        }

        return parts.Length >= 2 ? $"{parts[^2]}/{parts[^1]}" : parts[^1];
    }
}
