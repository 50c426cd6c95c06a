using System.Globalization;
using System.Text.Json;
using Burnrate.Attribution;
using Burnrate.Inventory;
using Burnrate.Pricing;
using Burnrate.Telemetry;

namespace Burnrate.Protocols.Events;

/// <summary>
/// Decodes the body of <c>POST /api/v1/events</c>: one event object, an array of them, or <c>{"events": [...]}</c>,
/// each <c>{"type": ..., "time": RFC 3339, ...}</c>, into <see cref="FleetEvent"/>s in document order. The schema is
/// in docs/api.md. Decoding is all or nothing: the first invalid event rejects the whole body, so a caller never
/// applies part of a request.
/// </summary>
/// <remarks>
/// Not a hot path (orchestrator hooks send a few events per job), so it reads a <see cref="JsonDocument"/>. Unknown
/// fields are ignored so that senders may add their own; unknown event types are rejected, since silently dropping
/// a lifecycle event would misprice.
/// </remarks>
public static class EventsDecoder
{
    /// <summary>The event types, as they appear in <c>type</c>.</summary>
    public static IReadOnlyList<string> Types { get; } =
    [
        "node_started", "node_stopped", "capacity_changed", "price_changed", "workload_started", "workload_stopped",
        "gpu_allocated", "gpu_released", "cpu_allocated", "bytes_transferred", "storage_changed", "work_counter",
    ];

    /// <summary>Decodes a UTF-8 JSON body.</summary>
    /// <exception cref="InvalidTelemetryException">
    /// The body is not JSON of the expected shape, or an event is invalid; the message names the event index and the
    /// field (answer 400).
    /// </exception>
    public static IReadOnlyList<FleetEvent> Decode(ReadOnlySpan<byte> utf8Json)
    {
        JsonDocument document;
        try
        {
            var reader = new Utf8JsonReader(utf8Json, new JsonReaderOptions { MaxDepth = 16 });
            document = JsonDocument.ParseValue(ref reader);
        }
        catch (JsonException e)
        {
            throw new InvalidTelemetryException($"body is not valid JSON: {e.Message}", e);
        }
        using (document)
        {
            var root = document.RootElement;
            var events = new List<FleetEvent>();
            switch (root.ValueKind)
            {
                case JsonValueKind.Array:
                    DecodeArray(root, events);
                    break;
                case JsonValueKind.Object when !root.TryGetProperty("type", out _) && root.TryGetProperty("events", out var wrapped):
                    if (wrapped.ValueKind != JsonValueKind.Array)
                        throw new InvalidTelemetryException("field 'events': must be an array of events");
                    DecodeArray(wrapped, events);
                    break;
                case JsonValueKind.Object:
                    events.Add(DecodeEvent(root, 0));
                    break;
                default:
                    throw new InvalidTelemetryException("body must be an event object, an array of events, or {\"events\": [...]}");
            }
            return events;
        }
    }

    private static void DecodeArray(JsonElement array, List<FleetEvent> events)
    {
        var index = 0;
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Object)
                throw Invalid(index, "", "must be a JSON object");
            events.Add(DecodeEvent(item, index));
            index++;
        }
    }

    private static FleetEvent DecodeEvent(JsonElement e, int index)
    {
        var type = RequiredString(e, index, "type");
        var time = Time(e, index);
        var at = new Event(e, index, "");
        switch (type)
        {
            case "node_started":
                return new NodeStarted(time, Node(at.Object("node")));
            case "node_stopped":
                return new NodeStopped(time, at.Required("node_id"));
            case "capacity_changed":
                return new CapacityChanged(time, at.Required("node_id"), at.Capacity("capacity", required: true));
            case "price_changed":
                return new PriceChanged(time, at.Required("provider"), at.Required("region"), at.Optional("zone"), at.Required("instance_type"),
                    at.Capacity("capacity", required: true), at.Decimal("usd_per_hour", required: true)!.Value, at.Decimal("gpu_usd_per_hour", required: false));
            case "workload_started":
                return new WorkloadStarted(time, Workload(at.Object("workload")), at.Decimal("estimate_usd_per_hour", required: false));
            case "workload_stopped":
                return new WorkloadStopped(time, at.Required("workload_id"));
            case "gpu_allocated":
                return new GpuAllocated(time, at.Required("workload_id"), at.Required("node_id"), at.Int("gpu_index", required: true), at.Share("share"));
            case "gpu_released":
                return new GpuReleased(time, at.Required("workload_id"), at.Required("node_id"), at.Int("gpu_index", required: true));
            case "cpu_allocated":
                return CpuAllocation(at, index, time);
            case "bytes_transferred":
                return new BytesTransferred(time, at.Required("workload_id"), at.Required("node_id"), at.TransferKind("kind"), at.Long("bytes"));
            case "storage_changed":
                return new StorageChanged(time, at.Required("volume_id"), at.Required("workload_id"), at.Required("provider"), at.Required("region"),
                    at.Required("storage_class"), at.Decimal("size_gb", required: true)!.Value);
            case "work_counter":
                return new WorkCounter(time, at.Required("workload_id"), at.Required("metric"), at.Double("total"));
            default:
                throw Invalid(index, "type", $"unknown event type '{type}'; known: {string.Join(", ", Types)}");
        }
    }

    private static CpuAllocated CpuAllocation(Event at, int index, DateTimeOffset time)
    {
        var cpus = at.Int("cpus", required: true);
        var nodeCpus = at.Int("node_cpus", required: true);
        if (cpus <= 0 || nodeCpus <= 0 || cpus > nodeCpus)
            throw Invalid(index, "cpus", string.Create(CultureInfo.InvariantCulture, $"must be between 1 and node_cpus, got {cpus} of {nodeCpus}"));
        return new CpuAllocated(time, at.Required("workload_id"), at.Required("node_id"), cpus, nodeCpus);
    }

    private static NodeSpec Node(Event node) => new(
        node.Required("id"),
        node.Required("provider").ToLowerInvariant(),
        node.Required("region"),
        node.Optional("zone"),
        node.Required("instance_type"),
        node.Capacity("capacity", required: false),
        node.Int("gpus", required: false),
        node.Optional("gpu_model"),
        node.Optional("cluster"),
        node.Optional("account"),
        node.Labels("labels"));

    private static WorkloadInfo Workload(Event workload)
    {
        var id = workload.Required("id");
        var name = workload.Optional("name");
        return new WorkloadInfo(
            id,
            workload.Optional("orchestrator") is { Length: > 0 } o ? o : "manual",
            name.Length > 0 ? name : id,
            workload.Optional("user"),
            workload.Optional("team"),
            workload.Optional("project"),
            workload.Optional("model"),
            workload.Labels("labels"));
    }

    private static string RequiredString(JsonElement e, int index, string field)
    {
        if (!e.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null)
            throw Invalid(index, field, "is required");
        if (value.ValueKind != JsonValueKind.String || value.GetString() is not { Length: > 0 } text)
            throw Invalid(index, field, "must be a non-empty string");
        return text;
    }

    private static DateTimeOffset Time(JsonElement e, int index)
    {
        var text = RequiredString(e, index, "time");
        if (!TryParseRfc3339(text, out var time))
            throw Invalid(index, "time", $"'{text}' is not an RFC 3339 time with an offset (e.g. 2025-06-01T12:00:00Z)");
        return time;
    }

    /// <summary>RFC 3339 §5.6 <c>date-time</c>: a full date, <c>T</c>, a time and a required offset (<c>Z</c> or <c>±hh:mm</c>).</summary>
    internal static bool TryParseRfc3339(string text, out DateTimeOffset time)
    {
        time = default;
        var t = text.IndexOfAny(['T', 't', ' ']);
        if (t != 10 || text.Length < 20)
            return false;
        var last = text[^1];
        var hasOffset = last is 'Z' or 'z' || (text.Length >= 25 && text[^6] is '+' or '-' && text[^3] == ':');
        if (!hasOffset)
            return false;
        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.None, out time);
    }

    private static InvalidTelemetryException Invalid(int index, string field, string reason) =>
        new(field.Length == 0 ? $"event {index}: {reason}" : $"event {index}: field '{field}' {reason}");

    /// <summary>An object inside event <c>Index</c>, at the dotted path <c>Prefix</c>, for error messages.</summary>
    private readonly record struct Event(JsonElement Element, int Index, string Prefix)
    {
        private string Path(string field) => Prefix.Length == 0 ? field : Prefix + "." + field;

        private bool TryGet(string field, out JsonElement value) =>
            Element.TryGetProperty(field, out value) && value.ValueKind != JsonValueKind.Null;

        public Event Object(string field)
        {
            if (!TryGet(field, out var value))
                throw Invalid(Index, Path(field), "is required");
            if (value.ValueKind != JsonValueKind.Object)
                throw Invalid(Index, Path(field), "must be an object");
            return new Event(value, Index, Path(field));
        }

        public string Required(string field)
        {
            if (!TryGet(field, out var value))
                throw Invalid(Index, Path(field), "is required");
            if (value.ValueKind != JsonValueKind.String || value.GetString() is not { Length: > 0 } text)
                throw Invalid(Index, Path(field), "must be a non-empty string");
            return text;
        }

        public string Optional(string field)
        {
            if (!TryGet(field, out var value))
                return "";
            if (value.ValueKind != JsonValueKind.String)
                throw Invalid(Index, Path(field), "must be a string");
            return value.GetString()!;
        }

        public CapacityType Capacity(string field, bool required)
        {
            if (!required && !TryGet(field, out _))
                return CapacityType.OnDemand;
            var text = Required(field);
            if (!CapacityTypes.TryParse(text, out var capacity))
                throw Invalid(Index, Path(field), $"'{text}' is not a capacity type (on_demand, spot, reserved)");
            return capacity;
        }

        public GpuShare Share(string field)
        {
            if (!TryGet(field, out _))
                return GpuShare.Whole;
            var text = Required(field);
            try
            {
                if (text == "whole")
                    return GpuShare.Whole;
                if (text.StartsWith("mig:", StringComparison.Ordinal))
                    return GpuShare.Mig(text[4..]);
                if (text.StartsWith("shared:", StringComparison.Ordinal))
                {
                    var parts = text[7..].Split('/');
                    if (parts.Length == 2
                        && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var numerator)
                        && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var denominator))
                        return GpuShare.Shared(numerator, denominator);
                }
            }
            catch (Exception e) when (e is FormatException or ArgumentOutOfRangeException)
            {
                throw Invalid(Index, Path(field), $"'{text}' is not a GPU share: {e.Message} (whole, mig:1g.10gb, shared:1/4)");
            }
            throw Invalid(Index, Path(field), $"'{text}' is not a GPU share (whole, mig:1g.10gb, shared:1/4)");
        }

        public TransferKind TransferKind(string field)
        {
            var text = Required(field);
            return text switch
            {
                "internet" => Pricing.TransferKind.Internet,
                "cross_region" => Pricing.TransferKind.CrossRegion,
                "cross_zone" => Pricing.TransferKind.CrossZone,
                "same_zone" => Pricing.TransferKind.SameZone,
                _ => throw Invalid(Index, Path(field), $"'{text}' is not a transfer kind (internet, cross_region, cross_zone, same_zone)"),
            };
        }

        public int Int(string field, bool required)
        {
            if (!TryGet(field, out var value))
                return required ? throw Invalid(Index, Path(field), "is required") : 0;
            if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out var number) || number < 0)
                throw Invalid(Index, Path(field), "must be a whole number, 0 or more");
            return number;
        }

        public long Long(string field)
        {
            if (!TryGet(field, out var value))
                throw Invalid(Index, Path(field), "is required");
            if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out var number) || number < 0)
                throw Invalid(Index, Path(field), "must be a whole number, 0 or more");
            return number;
        }

        public double Double(string field)
        {
            if (!TryGet(field, out var value))
                throw Invalid(Index, Path(field), "is required");
            if (value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out var number) || !double.IsFinite(number) || number < 0)
                throw Invalid(Index, Path(field), "must be a number, 0 or more");
            return number;
        }

        /// <summary>A non-negative decimal, from a JSON number or a decimal string (exact either way: no binary floating point).</summary>
        public decimal? Decimal(string field, bool required)
        {
            if (!TryGet(field, out var value))
                return required ? throw Invalid(Index, Path(field), "is required") : null;
            var ok = value.ValueKind switch
            {
                JsonValueKind.Number => value.TryGetDecimal(out var d) ? d : (decimal?)null,
                JsonValueKind.String => decimal.TryParse(value.GetString(), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var d) ? d : null,
                _ => null,
            };
            if (ok is not { } number || number < 0)
                throw Invalid(Index, Path(field), "must be a decimal number, 0 or more");
            return number;
        }

        public Dictionary<string, string>? Labels(string field)
        {
            if (!TryGet(field, out var value))
                return null;
            if (value.ValueKind != JsonValueKind.Object)
                throw Invalid(Index, Path(field), "must be an object of string values");
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var property in value.EnumerateObject())
            {
                if (property.Value.ValueKind != JsonValueKind.String)
                    throw Invalid(Index, Path(field) + "." + property.Name, "must be a string");
                labels[property.Name] = property.Value.GetString()!;
            }
            return labels;
        }
    }
}
