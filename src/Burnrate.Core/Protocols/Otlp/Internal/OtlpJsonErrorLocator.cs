using System.Buffers.Text;
using System.Globalization;
using System.Text.Json;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace Burnrate.Protocols.Otlp.Internal;

/// <summary>
/// Says where an OTLP JSON body that Google.Protobuf's <see cref="JsonParser"/> refused is wrong: that parser's messages
/// name neither a position nor a field (<c>Invalid numeric value for type: eight</c>). Only for bodies already refused,
/// so it may parse again: a syntax error gets its line and column from <see cref="Utf8JsonReader"/>; otherwise one walk
/// of the document along the message descriptors finds the first value of the wrong JSON kind, or the first scalar
/// that looks wrong and that the parser refuses on its own, and names it by its JSON path. Linear in the body.
/// </summary>
internal static class OtlpJsonErrorLocator
{
    // Deeper than the parser's recursion limit (100), so that depth alone is the parser's error, not a syntax error.
    private const int MaxDepth = 256;

    /// <summary>
    /// The error message for <paramref name="utf8Json"/>, which <paramref name="parser"/> refused with
    /// <paramref name="parserMessage"/>: <c>json: not valid JSON at line 3, column 17: …</c> for a syntax error,
    /// <c>json: cannot decode X at resourceMetrics[0]….asInt (metric "up"): …</c> for a value, or
    /// <c>json: cannot decode X: …</c> when the value is not found.
    /// </summary>
    public static string Describe(ReadOnlySpan<byte> utf8Json, JsonParser parser, string messageName, string parserMessage)
    {
        var options = new JsonReaderOptions { MaxDepth = MaxDepth };
        var reader = new Utf8JsonReader(utf8Json, options);
        try
        {
            while (reader.Read())
            {
            }
        }
        catch (JsonException e)
        {
            var line = (e.LineNumber ?? 0) + 1;
            var column = (e.BytePositionInLine ?? 0) + 1;
            return string.Create(CultureInfo.InvariantCulture, $"json: not valid JSON at line {line}, column {column}: {WithoutPosition(e.Message)}");
        }

        reader = new Utf8JsonReader(utf8Json, options);
        using var document = JsonDocument.ParseValue(ref reader);
        var where = Walk(document.RootElement, Proto.ExportMetricsServiceRequest.Descriptor, "", null, parser) is { } found
            ? found.Metric is null ? $" at {found.Path}" : $" at {found.Path} (metric \"{found.Metric}\")"
            : "";
        return $"json: cannot decode {messageName}{where}: {parserMessage}";
    }

    /// <summary>The first wrong value under <paramref name="element"/>, a <paramref name="descriptor"/> message, or null.</summary>
    private static Found? Walk(JsonElement element, MessageDescriptor descriptor, string path, string? metric, JsonParser parser)
    {
        if (element.ValueKind != JsonValueKind.Object)
            return new Found(path.Length == 0 ? "the top level" : path, metric);
        if (descriptor == Proto.Metric.Descriptor)
            metric = element.TryGetProperty("name", out var name) && name.ValueKind == JsonValueKind.String ? name.GetString() : null;

        List<OneofDescriptor>? oneofs = null;
        foreach (var property in element.EnumerateObject())
        {
            if (Field(descriptor, property.Name) is not { } field || property.Value.ValueKind == JsonValueKind.Null)
                continue; // unknown fields are ignored (OTLP/JSON); null is the default value
            var fieldPath = path.Length == 0 ? property.Name : path + "." + property.Name;
            if (field.RealContainingOneof is { } oneof)
            {
                oneofs ??= [];
                if (oneofs.Contains(oneof))
                    return new Found(fieldPath, metric); // a second member of the same oneof
                oneofs.Add(oneof);
            }
            if (!field.IsRepeated)
            {
                if (WalkValue(property.Value, field, descriptor, property.Name, isElement: false, fieldPath, metric, parser) is { } wrong)
                    return wrong;
                continue;
            }
            if (property.Value.ValueKind != JsonValueKind.Array)
                return new Found(fieldPath, metric);
            var index = 0;
            foreach (var item in property.Value.EnumerateArray())
            {
                var itemPath = string.Create(CultureInfo.InvariantCulture, $"{fieldPath}[{index++}]");
                if (item.ValueKind == JsonValueKind.Null)
                    return new Found(itemPath, metric); // repeated elements cannot be null
                if (WalkValue(item, field, descriptor, property.Name, isElement: true, itemPath, metric, parser) is { } wrong)
                    return wrong;
            }
        }
        return null;
    }

    private static Found? WalkValue(JsonElement value, FieldDescriptor field, MessageDescriptor owner, string key, bool isElement, string path, string? metric, JsonParser parser)
    {
        if (field.FieldType is FieldType.Message or FieldType.Group)
            return Walk(value, field.MessageType, path, metric, parser);
        if (LooksValid(value, field.FieldType) || ParserAccepts(value, owner, key, isElement, parser))
            return null;
        return new Found(path, metric);
    }

    // A cheap check of the proto3 JSON forms; what fails it is confirmed with the parser itself, so this may be strict.
    private static bool LooksValid(JsonElement value, FieldType type) => type switch
    {
        FieldType.String => value.ValueKind == JsonValueKind.String,
        FieldType.Bool => value.ValueKind is JsonValueKind.True or JsonValueKind.False,
        FieldType.Bytes => value.ValueKind == JsonValueKind.String && Base64.IsValid(value.GetString()),
        FieldType.Enum => value.ValueKind == JsonValueKind.String || (value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out _)),
        FieldType.Double or FieldType.Float => value.ValueKind == JsonValueKind.Number
            || (value.ValueKind == JsonValueKind.String && value.GetString() is { } text
                && (text is "NaN" or "Infinity" or "-Infinity" || double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out _))),
        FieldType.Int32 or FieldType.SInt32 or FieldType.SFixed32 => value.ValueKind == JsonValueKind.Number ? value.TryGetInt32(out _)
            : value.ValueKind == JsonValueKind.String && int.TryParse(value.GetString(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _),
        FieldType.UInt32 or FieldType.Fixed32 => value.ValueKind == JsonValueKind.Number ? value.TryGetUInt32(out _)
            : value.ValueKind == JsonValueKind.String && uint.TryParse(value.GetString(), NumberStyles.None, CultureInfo.InvariantCulture, out _),
        FieldType.Int64 or FieldType.SInt64 or FieldType.SFixed64 => value.ValueKind == JsonValueKind.Number ? value.TryGetInt64(out _)
            : value.ValueKind == JsonValueKind.String && long.TryParse(value.GetString(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _),
        FieldType.UInt64 or FieldType.Fixed64 => value.ValueKind == JsonValueKind.Number ? value.TryGetUInt64(out _)
            : value.ValueKind == JsonValueKind.String && ulong.TryParse(value.GetString(), NumberStyles.None, CultureInfo.InvariantCulture, out _),
        _ => true,
    };

    // The value alone, as the only field of its message: does the parser take it?
    private static bool ParserAccepts(JsonElement value, MessageDescriptor owner, string key, bool isElement, JsonParser parser)
    {
        var raw = value.GetRawText();
        var json = "{\"" + JsonEncodedText.Encode(key) + "\":" + (isElement ? "[" + raw + "]" : raw) + "}";
        try
        {
            parser.Parse(json, owner);
            return true;
        }
        catch (Exception e) when (e is InvalidJsonException or InvalidProtocolBufferException or FormatException or OverflowException)
        {
            return false;
        }
    }

    private static FieldDescriptor? Field(MessageDescriptor descriptor, string key)
    {
        foreach (var field in descriptor.Fields.InDeclarationOrder())
        {
            if (field.JsonName == key || field.Name == key)
                return field;
        }
        return null;
    }

    // "'x' is invalid … LineNumber: 0 | BytePositionInLine: 5." without the position, which the caller words itself.
    private static string WithoutPosition(string message)
    {
        var at = message.IndexOf(" LineNumber:", StringComparison.Ordinal);
        return at < 0 ? message : message[..at];
    }

    private sealed record Found(string Path, string? Metric);
}
