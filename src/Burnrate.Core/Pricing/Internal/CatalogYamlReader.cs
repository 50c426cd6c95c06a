using System.Globalization;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Burnrate.Pricing.Internal;

/// <summary>
/// Reads the Burnrate catalog format (docs/pricing.md) node by node, so every error can name its line. Unknown keys
/// are errors: a misspelt <c>spto:</c> would otherwise silently drop a spot price.
/// </summary>
internal sealed class CatalogYamlReader
{
    private static readonly HashSet<string> s_topKeys = ["provider", "effective_from", "source", "instances", "rate_card"];
    private static readonly HashSet<string> s_instanceKeys = ["type", "provider", "gpu", "gpus", "vcpus", "memory_gib", "prices", "note"];
    private static readonly HashSet<string> s_priceKeys =
    [
        "region", "zone", "effective_from", "on_demand", "spot", "reserved",
        "machine_on_demand", "gpu_on_demand", "machine_spot", "gpu_spot", "machine_reserved", "gpu_reserved", "note",
    ];

    private static readonly HashSet<string> s_rateKeys = ["egress", "storage", "regions"];

    private readonly string _file;
    private readonly List<InstancePrice> _prices;
    private readonly Dictionary<string, RateCardTable.Rates> _rates;

    public CatalogYamlReader(string file, List<InstancePrice> prices, Dictionary<string, RateCardTable.Rates> rates)
    {
        _file = file;
        _prices = prices;
        _rates = rates;
    }

    public void Read(TextReader text)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(text);
        }
        catch (YamlException e)
        {
            throw new CatalogFormatException(_file, (int)e.Start.Line, "not valid YAML: " + e.Message, e);
        }

        if (stream.Documents.Count == 0)
            return;
        if (stream.Documents[0].RootNode is not YamlMappingNode root)
            throw Error(stream.Documents[0].RootNode, "the file must be a mapping with 'instances' and/or 'rate_card'");
        CheckKeys(root, s_topKeys, "the top level");

        var provider = OptionalString(root, "provider");
        var effective = OptionalDate(root, "effective_from");
        // A price's source names the file and line it came from, so a ledger amount can be traced back to it.
        var source = OptionalString(root, "source")
            ?? (_file.StartsWith("builtin:", StringComparison.Ordinal) ? _file : "catalog:" + Path.GetFileName(_file));

        if (Child(root, "instances") is { } instances)
        {
            if (instances is not YamlSequenceNode list)
                throw Error(instances, "'instances' must be a list");
            foreach (var node in list)
                ReadInstance(node, provider, effective, source);
        }

        if (Child(root, "rate_card") is { } card)
            ReadRateCard(card);
    }

    private void ReadInstance(YamlNode node, string? fileProvider, DateTimeOffset? fileEffective, string source)
    {
        if (node is not YamlMappingNode map)
            throw Error(node, "an instance must be a mapping with 'type' and 'prices'");
        CheckKeys(map, s_instanceKeys, "an instance");
        var type = RequiredString(map, "type", "an instance");
        var provider = (OptionalString(map, "provider") ?? fileProvider)
            ?? throw Error(map, $"instance '{type}' has no provider: give 'provider' at the top of the file or on the instance");
        provider = provider.ToLowerInvariant();
        var gpus = OptionalInt(map, "gpus") ?? 0;
        var gpu = OptionalString(map, "gpu") ?? "";
        if (gpus > 0 && gpu.Length == 0)
            throw Error(map, $"instance '{type}' has {gpus} GPUs but no 'gpu' model");
        var vcpus = OptionalInt(map, "vcpus") ?? 0;
        var memory = OptionalDecimal(map, "memory_gib") ?? 0m;
        if (Child(map, "prices") is not YamlSequenceNode prices || prices.Children.Count == 0)
            throw Error(map, $"instance '{type}' needs a non-empty 'prices' list");

        foreach (var priceNode in prices)
        {
            if (priceNode is not YamlMappingNode price)
                throw Error(priceNode, $"a price of '{type}' must be a mapping");
            CheckKeys(price, s_priceKeys, $"a price of '{type}'");
            var region = RequiredString(price, "region", $"a price of '{type}'");
            var zone = OptionalString(price, "zone") ?? "";
            var effective = OptionalDate(price, "effective_from") ?? fileEffective
                ?? throw Error(price, $"price of '{type}' in {region} has no effective_from (give it on the price or at the top of the file)");
            var line = (int)price.Start.Line;
            var made = 0;
            foreach (var (capacity, whole, machine, gpuEach) in new[]
            {
                (CapacityType.OnDemand, "on_demand", "machine_on_demand", "gpu_on_demand"),
                (CapacityType.Spot, "spot", "machine_spot", "gpu_spot"),
                (CapacityType.Reserved, "reserved", "machine_reserved", "gpu_reserved"),
            })
            {
                var wholePrice = OptionalDecimal(price, whole);
                var machinePrice = OptionalDecimal(price, machine);
                var gpuPrice = OptionalDecimal(price, gpuEach);
                decimal perHour, gpuPerHour;
                if (wholePrice is { } p)
                {
                    if (machinePrice is not null || gpuPrice is not null)
                        throw Error(price, $"price of '{type}' in {region} gives both '{whole}' and '{machine}'/'{gpuEach}': give one or the other");
                    perHour = p;
                    gpuPerHour = PriceSplit.GpuPricePerHour(p, gpus, vcpus, memory);
                }
                else if (machinePrice is not null || gpuPrice is not null)
                {
                    if (machinePrice is null || gpuPrice is null)
                        throw Error(price, $"price of '{type}' in {region} needs both '{machine}' and '{gpuEach}'");
                    if (gpus <= 0)
                        throw Error(price, $"price of '{type}' in {region} prices GPUs apart but the instance has no 'gpus'");
                    (perHour, gpuPerHour) = PriceSplit.PricedApart(machinePrice.Value, gpuPrice.Value, gpus);
                }
                else
                {
                    continue;
                }

                _prices.Add(new InstancePrice(provider, region, zone, type, capacity, perHour, gpuPerHour, gpus, gpu, vcpus, memory,
                    effective, $"{source}:{line}"));
                made++;
            }

            if (made == 0)
                throw Error(price, $"price of '{type}' in {region} gives no price: use on_demand, spot, reserved or machine_*/gpu_*");
        }
    }

    private void ReadRateCard(YamlNode node)
    {
        if (node is not YamlMappingNode map)
            throw Error(node, "'rate_card' must map provider names to rates");
        foreach (var (keyNode, value) in map.Children)
        {
            var provider = ((YamlScalarNode)keyNode).Value?.ToLowerInvariant() ?? "";
            if (!_rates.TryGetValue(provider, out var rates))
                _rates[provider] = rates = new RateCardTable.Rates();
            ReadRates(value, rates, provider, allowRegions: true);
        }
    }

    private void ReadRates(YamlNode node, RateCardTable.Rates rates, string what, bool allowRegions)
    {
        if (node is not YamlMappingNode map)
            throw Error(node, $"rates of '{what}' must be a mapping with 'egress', 'storage' and optionally 'regions'");
        CheckKeys(map, s_rateKeys, $"rates of '{what}'");
        if (Child(map, "egress") is { } egress)
        {
            if (egress is not YamlMappingNode egressMap)
                throw Error(egress, $"egress of '{what}' must map transfer kinds to $/GB");
            foreach (var (k, v) in egressMap.Children)
            {
                var name = ((YamlScalarNode)k).Value ?? "";
                TransferKind kind = name switch
                {
                    "internet" => TransferKind.Internet,
                    "cross_region" => TransferKind.CrossRegion,
                    "cross_zone" => TransferKind.CrossZone,
                    "same_zone" => TransferKind.SameZone,
                    _ => throw Error(k, $"unknown transfer kind '{name}' in egress of '{what}' (use internet, cross_region, cross_zone, same_zone)"),
                };
                rates.Egress[kind] = Decimal(v, $"egress {name} of '{what}'");
            }
        }

        if (Child(map, "storage") is { } storage)
        {
            if (storage is not YamlMappingNode storageMap)
                throw Error(storage, $"storage of '{what}' must map storage classes to $/GB-month");
            foreach (var (k, v) in storageMap.Children)
            {
                var name = ((YamlScalarNode)k).Value ?? "";
                rates.Storage[name] = Decimal(v, $"storage {name} of '{what}'");
            }
        }

        if (Child(map, "regions") is { } regions)
        {
            if (!allowRegions || regions is not YamlMappingNode regionMap)
                throw Error(regions, $"'regions' of '{what}' must map region names to rates (and cannot nest)");
            foreach (var (k, v) in regionMap.Children)
            {
                var region = ((YamlScalarNode)k).Value ?? "";
                if (!rates.Regions.TryGetValue(region, out var regional))
                    rates.Regions[region] = regional = new RateCardTable.Rates();
                ReadRates(v, regional, $"{what}/{region}", allowRegions: false);
            }
        }
    }

    private void CheckKeys(YamlMappingNode map, HashSet<string> allowed, string where)
    {
        foreach (var key in map.Children.Keys)
        {
            var name = (key as YamlScalarNode)?.Value;
            if (name is null || !allowed.Contains(name))
                throw Error(key, $"unknown key '{name}' in {where} (expected one of: {string.Join(", ", allowed)})");
        }
    }

    private static YamlNode? Child(YamlMappingNode map, string key) =>
        map.Children.TryGetValue(new YamlScalarNode(key), out var value) ? value : null;

    private string? OptionalString(YamlMappingNode map, string key)
    {
        if (Child(map, key) is not { } node)
            return null;
        if (node is not YamlScalarNode scalar || string.IsNullOrWhiteSpace(scalar.Value))
            throw Error(node, $"'{key}' must be a non-empty text");
        return scalar.Value.Trim();
    }

    private string RequiredString(YamlMappingNode map, string key, string where) =>
        OptionalString(map, key) ?? throw Error(map, $"{where} needs '{key}'");

    private int? OptionalInt(YamlMappingNode map, string key)
    {
        if (Child(map, key) is not { } node)
            return null;
        if (node is YamlScalarNode { Value: { } text } && int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value))
            return value;
        throw Error(node, $"'{key}' must be a whole number >= 0, got '{(node as YamlScalarNode)?.Value}'");
    }

    private decimal? OptionalDecimal(YamlMappingNode map, string key) =>
        Child(map, key) is { } node ? Decimal(node, $"'{key}'") : null;

    private decimal Decimal(YamlNode node, string what)
    {
        // Prices stay decimal from the text on: parsing through double would turn 0.09 into 0.0899999...
        if (node is YamlScalarNode { Value: { } text }
            && decimal.TryParse(text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value))
            return value;
        throw Error(node, $"{what} must be a number >= 0 in dollars (e.g. 12.34), got '{(node as YamlScalarNode)?.Value}'");
    }

    private DateTimeOffset? OptionalDate(YamlMappingNode map, string key)
    {
        if (Child(map, key) is not { } node)
            return null;
        var text = (node as YamlScalarNode)?.Value;
        if (text is not null
            && (text.EndsWith('Z') || text.Contains('+', StringComparison.Ordinal) || text.LastIndexOf('-') > 9)
            && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.None, out var value))
            return value.ToUniversalTime();
        throw Error(node, $"'{key}' must be an ISO 8601 instant with its offset, e.g. 2025-01-01T00:00:00Z, got '{text}'");
    }

    private CatalogFormatException Error(YamlNode node, string problem) => new(_file, (int)node.Start.Line, problem);
}
