using System.Buffers.Text;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text;
using System.Text.Unicode;
using Burnrate.Protocols.Exposition.Internal;
using Burnrate.Telemetry;

namespace Burnrate.Protocols.Exposition;

/// <summary>
/// Parses the Prometheus text exposition format, version 0.0.4 (what <c>/metrics</c> of dcgm-exporter,
/// kube-state-metrics, node-exporter and vLLM serve), into <see cref="MetricSample"/>s and <see cref="MetricMetadata"/>.
/// Grammar per the Prometheus "Exposition formats" text-format section: <c>name{label="value",...} value [timestamp]</c>,
/// <c># HELP name text</c>, <c># TYPE name type</c>, other <c>#</c> lines are comments; blanks and tabs separate tokens.
/// Histogram and summary series (<c>_bucket</c> with <c>le</c>, <c>_sum</c>, <c>_count</c>, <c>quantile</c>) come out as
/// plain samples. Values are passed through as written, including NaN, ±Inf and DCGM's ~9.22e18 "not available"
/// sentinel; deciding what a value means is the mapping's job.
/// </summary>
/// <remarks>
/// Strict mode throws <see cref="InvalidTelemetryException"/> at the first malformed line; lenient mode (the default, for
/// scraping) skips malformed lines and reports them, so a mostly-good target keeps its good samples. Metric names,
/// label names and label values are interned in a pool that lives as long as the parser: reuse one parser per target.
/// An instance is not thread-safe.
/// </remarks>
public sealed class ExpositionParser
{
    /// <summary>At most this many malformed lines are listed in <see cref="ExpositionResult.Errors"/>.</summary>
    public const int MaxReportedErrors = 100;

    private readonly bool _strict;
    private readonly Utf8StringPool _pool = new();
    private Label[] _labels = new Label[16];
    private byte[] _unescaped = new byte[256];

    /// <summary>Creates a parser; <paramref name="strict"/> makes the first malformed line throw instead of being skipped.</summary>
    public ExpositionParser(bool strict = false) => _strict = strict;

    /// <summary>Whether the first malformed line throws.</summary>
    public bool Strict => _strict;

    /// <summary>
    /// Parses one page. <paramref name="defaultTimestampMs"/> (Unix ms, normally the scrape time) is the timestamp of
    /// every sample whose line carries none.
    /// </summary>
    /// <exception cref="InvalidTelemetryException">In strict mode, at the first malformed line; the message names the
    /// line, the column and what was expected.</exception>
    public ExpositionResult Parse(ReadOnlySpan<byte> utf8, long defaultTimestampMs)
    {
        var samples = new List<MetricSample>();
        var metadata = new List<MetricMetadata>();
        var errors = new List<ExpositionError>();
        Dictionary<string, int>? familyIndex = null;
        var skipped = 0;
        var lineNumber = 0;
        while (!utf8.IsEmpty)
        {
            lineNumber++;
            var ok = TryReadLine(utf8, defaultTimestampMs, out var line, out var consumed);
            utf8 = utf8[consumed..];
            if (!ok)
            {
                var error = new ExpositionError(lineNumber, line.ErrorColumn, line.Error!);
                if (_strict)
                    ThrowInvalid(error);
                skipped++;
                if (errors.Count < MaxReportedErrors)
                    errors.Add(error);
                continue;
            }
            switch (line.Kind)
            {
                case ExpositionLineKind.Sample:
                    samples.Add(line.Sample);
                    break;
                case ExpositionLineKind.Help:
                case ExpositionLineKind.Type:
                    familyIndex ??= new Dictionary<string, int>(StringComparer.Ordinal);
                    if (!familyIndex.TryGetValue(line.MetricFamily, out var index))
                    {
                        index = metadata.Count;
                        familyIndex.Add(line.MetricFamily, index);
                        metadata.Add(new MetricMetadata(line.MetricFamily, "untyped", "", ""));
                    }
                    metadata[index] = line.Kind == ExpositionLineKind.Help
                        ? metadata[index] with { Help = line.Text }
                        : metadata[index] with { Type = line.Text };
                    break;
            }
        }
        return new ExpositionResult(samples, metadata, errors, skipped);
    }

    /// <summary>
    /// Reads the first line of <paramref name="source"/>. <paramref name="consumed"/> is the whole line with its LF
    /// (or to the end of <paramref name="source"/> when the last line has none), whether or not it parsed, so a caller
    /// can step over a bad line. Returns false for a malformed line (<see cref="ExpositionLineKind.Invalid"/>, with the
    /// column and what was expected) and for an empty <paramref name="source"/> (then <paramref name="consumed"/> is 0).
    /// </summary>
    public bool TryReadLine(ReadOnlySpan<byte> source, long defaultTimestampMs, out ExpositionLine line, out int consumed)
    {
        if (source.IsEmpty)
        {
            line = ExpositionLine.Invalid(1, "expected a line");
            consumed = 0;
            return false;
        }
        var end = source.IndexOf((byte)'\n');
        consumed = end < 0 ? source.Length : end + 1;
        var text = end < 0 ? source : source[..end];
        if (!text.IsEmpty && text[^1] == (byte)'\r')
            text = text[..^1]; // CRLF, as some Windows exporters write
        var last = text.Length;
        while (last > 0 && IsBlank(text[last - 1]))
            last--;
        text = text[..last]; // trailing whitespace is ignored; columns still count from the line's first byte

        var pos = SkipBlanks(text, 0);
        if (pos == text.Length)
        {
            line = ExpositionLine.Blank;
            return true;
        }
        line = text[pos] == (byte)'#'
            ? ReadComment(text, pos)
            : ReadSample(text, pos, defaultTimestampMs);
        return line.Kind != ExpositionLineKind.Invalid;
    }

    private ExpositionLine ReadComment(ReadOnlySpan<byte> text, int pos)
    {
        pos++; // '#'
        var afterHash = SkipBlanks(text, pos);
        if (afterHash == pos)
            return ExpositionLine.Comment; // "#HELP" is a comment, not a HELP line
        pos = afterHash;
        var keywordEnd = pos;
        while (keywordEnd < text.Length && !IsBlank(text[keywordEnd]))
            keywordEnd++;
        var keyword = text[pos..keywordEnd];
        var isHelp = keyword.SequenceEqual("HELP"u8);
        if (!isHelp && !keyword.SequenceEqual("TYPE"u8))
            return ExpositionLine.Comment;

        pos = SkipBlanks(text, keywordEnd);
        var nameStart = pos;
        pos = ScanMetricName(text, pos);
        if (pos == nameStart)
            return ExpositionLine.Invalid(pos + 1, $"expected a metric name after '# {(isHelp ? "HELP" : "TYPE")}'{Found(text, pos)}");
        if (pos < text.Length && !IsBlank(text[pos]))
            return ExpositionLine.Invalid(pos + 1, $"expected whitespace after the metric name{Found(text, pos)}");
        var family = _pool.GetOrAdd(text[nameStart..pos]);
        pos = SkipBlanks(text, pos);

        if (isHelp)
        {
            var help = text[pos..];
            if (!Utf8.IsValid(help))
                return ExpositionLine.Invalid(pos + 1, "expected UTF-8 help text");
            return ExpositionLine.ForHelp(family, help.IndexOf((byte)'\\') < 0 ? Encoding.UTF8.GetString(help) : UnescapeHelp(help));
        }

        var type = text[pos..];
        string? typeName = type switch
        {
            _ when type.SequenceEqual("counter"u8) => "counter",
            _ when type.SequenceEqual("gauge"u8) => "gauge",
            _ when type.SequenceEqual("histogram"u8) => "histogram",
            _ when type.SequenceEqual("summary"u8) => "summary",
            _ when type.SequenceEqual("untyped"u8) => "untyped",
            _ => null,
        };
        return typeName is null
            ? ExpositionLine.Invalid(pos + 1, $"expected a metric type (counter, gauge, histogram, summary or untyped){Found(text, pos)}")
            : ExpositionLine.ForType(family, typeName);
    }

    private ExpositionLine ReadSample(ReadOnlySpan<byte> text, int pos, long defaultTimestampMs)
    {
        var nameStart = pos;
        pos = ScanMetricName(text, pos);
        if (pos == nameStart)
            return ExpositionLine.Invalid(pos + 1, $"expected a metric name{Found(text, pos)}");
        var count = 0;
        AddLabel(ref count, new Label(MetricSample.NameLabel, _pool.GetOrAdd(text[nameStart..pos])));

        var afterName = SkipBlanks(text, pos);
        if (afterName < text.Length && text[afterName] == (byte)'{')
        {
            pos = afterName + 1;
            while (true)
            {
                pos = SkipBlanks(text, pos);
                if (pos < text.Length && text[pos] == (byte)'}')
                {
                    pos++;
                    break;
                }
                var labelStart = pos;
                pos = ScanLabelName(text, pos);
                if (pos == labelStart)
                    return ExpositionLine.Invalid(pos + 1, $"expected a label name or '}}'{Found(text, pos)}");
                var labelName = text[labelStart..pos];
                pos = SkipBlanks(text, pos);
                if (pos >= text.Length || text[pos] != (byte)'=')
                    return ExpositionLine.Invalid(pos + 1, $"expected '=' after label name '{Encoding.UTF8.GetString(labelName)}'{Found(text, pos)}");
                pos = SkipBlanks(text, pos + 1);
                if (pos >= text.Length || text[pos] != (byte)'"')
                    return ExpositionLine.Invalid(pos + 1, $"expected '\"' to open the value of label '{Encoding.UTF8.GetString(labelName)}'{Found(text, pos)}");
                var valueStart = ++pos;
                var escaped = false;
                while (pos < text.Length && text[pos] != (byte)'"')
                {
                    if (text[pos] == (byte)'\\')
                    {
                        escaped = true;
                        pos++; // the escaped byte, whatever it is, cannot close the value
                    }
                    pos++;
                }
                if (pos >= text.Length)
                    return ExpositionLine.Invalid(text.Length + 1, $"expected '\"' to close the value of label '{Encoding.UTF8.GetString(labelName)}'");
                var rawValue = text[valueStart..pos];
                if (!Utf8.IsValid(rawValue))
                    return ExpositionLine.Invalid(valueStart + 1, $"expected a UTF-8 value for label '{Encoding.UTF8.GetString(labelName)}'");
                var value = escaped ? InternUnescapedLabelValue(rawValue) : _pool.GetOrAdd(rawValue);
                AddLabel(ref count, new Label(_pool.GetOrAdd(labelName), value));
                pos = SkipBlanks(text, pos + 1);
                if (pos < text.Length && text[pos] == (byte)',')
                {
                    pos++; // a trailing comma before '}' is allowed
                    continue;
                }
                if (pos < text.Length && text[pos] == (byte)'}')
                {
                    pos++;
                    break;
                }
                return ExpositionLine.Invalid(pos + 1, $"expected ',' or '}}' after a label value{Found(text, pos)}");
            }
            pos = SkipBlanks(text, pos);
        }
        else if (afterName == pos)
        {
            return ExpositionLine.Invalid(pos + 1, pos == text.Length
                ? "expected a value after the metric name"
                : $"expected '{{' or whitespace after the metric name{Found(text, pos)}");
        }
        else
        {
            pos = afterName;
        }

        var valueTokenStart = pos;
        pos = ScanToken(text, pos);
        if (pos == valueTokenStart)
            return ExpositionLine.Invalid(pos + 1, "expected a sample value");
        if (!TryParseValue(text[valueTokenStart..pos], out var sampleValue))
            return ExpositionLine.Invalid(valueTokenStart + 1, $"expected a sample value (a float, NaN, +Inf or -Inf), found '{Encoding.UTF8.GetString(text[valueTokenStart..pos])}'");

        var timestamp = defaultTimestampMs;
        pos = SkipBlanks(text, pos);
        if (pos < text.Length)
        {
            var timestampStart = pos;
            pos = ScanToken(text, pos);
            if (!Utf8Parser.TryParse(text[timestampStart..pos], out timestamp, out var used) || used != pos - timestampStart)
                return ExpositionLine.Invalid(timestampStart + 1, $"expected a timestamp in integer milliseconds, found '{Encoding.UTF8.GetString(text[timestampStart..pos])}'");
            pos = SkipBlanks(text, pos);
            if (pos < text.Length)
                return ExpositionLine.Invalid(pos + 1, $"expected the end of the line after the timestamp{Found(text, pos)}");
        }

        var labels = _labels.AsSpan(0, count);
        SortByName(labels);
        for (var i = 1; i < labels.Length; i++)
        {
            if (string.Equals(labels[i].Name, labels[i - 1].Name, StringComparison.Ordinal))
                return ExpositionLine.Invalid(valueTokenStart + 1, $"expected distinct label names, '{labels[i].Name}' appears twice");
        }
        return ExpositionLine.ForSample(new MetricSample(labels.ToArray(), timestamp, sampleValue));
    }

    private void AddLabel(ref int count, Label label)
    {
        if (count == _labels.Length)
            Array.Resize(ref _labels, _labels.Length * 2);
        _labels[count++] = label;
    }

    // Label sets are short (DCGM's are about ten): insertion sort, no comparer allocation.
    private static void SortByName(Span<Label> labels)
    {
        for (var i = 1; i < labels.Length; i++)
        {
            var current = labels[i];
            var j = i - 1;
            while (j >= 0 && string.CompareOrdinal(labels[j].Name, current.Name) > 0)
            {
                labels[j + 1] = labels[j];
                j--;
            }
            labels[j + 1] = current;
        }
    }

    // Label values: \\ → \, \" → ", \n → LF; any other escape is kept as written, as Prometheus does.
    private string InternUnescapedLabelValue(ReadOnlySpan<byte> raw)
    {
        if (_unescaped.Length < raw.Length)
            _unescaped = new byte[Math.Max(raw.Length, _unescaped.Length * 2)];
        var length = Unescape(raw, _unescaped, allowQuote: true);
        return _pool.GetOrAdd(_unescaped.AsSpan(0, length));
    }

    // HELP text: \\ → \ and \n → LF only (format 0.0.4); help is not interned, it appears once per family.
    private string UnescapeHelp(ReadOnlySpan<byte> raw)
    {
        if (_unescaped.Length < raw.Length)
            _unescaped = new byte[Math.Max(raw.Length, _unescaped.Length * 2)];
        var length = Unescape(raw, _unescaped, allowQuote: false);
        return Encoding.UTF8.GetString(_unescaped.AsSpan(0, length));
    }

    private static int Unescape(ReadOnlySpan<byte> raw, Span<byte> destination, bool allowQuote)
    {
        var length = 0;
        for (var i = 0; i < raw.Length; i++)
        {
            var b = raw[i];
            if (b == (byte)'\\' && i + 1 < raw.Length)
            {
                var next = raw[i + 1];
                if (next == (byte)'\\' || (allowQuote && next == (byte)'"'))
                {
                    destination[length++] = next;
                    i++;
                    continue;
                }
                if (next == (byte)'n')
                {
                    destination[length++] = (byte)'\n';
                    i++;
                    continue;
                }
            }
            destination[length++] = b;
        }
        return length;
    }

    /// <summary>Go's strconv.ParseFloat spellings of the specials (any case, Inf with an optional sign), else a decimal float.</summary>
    private static bool TryParseValue(ReadOnlySpan<byte> token, out double value)
    {
        var unsigned = token[0] is (byte)'+' or (byte)'-' ? token[1..] : token;
        if (Ascii.EqualsIgnoreCase(unsigned, "inf"u8) || Ascii.EqualsIgnoreCase(unsigned, "infinity"u8))
        {
            value = token[0] == (byte)'-' ? double.NegativeInfinity : double.PositiveInfinity;
            return true;
        }
        if (Ascii.EqualsIgnoreCase(token, "nan"u8))
        {
            value = double.NaN;
            return true;
        }
        if (unsigned.IsEmpty || !(IsDigit(unsigned[0]) || unsigned[0] == (byte)'.'))
        {
            value = 0;
            return false;
        }
        return double.TryParse(token, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint | NumberStyles.AllowExponent,
            CultureInfo.InvariantCulture, out value);
    }

    private static int ScanMetricName(ReadOnlySpan<byte> text, int pos)
    {
        if (pos >= text.Length || !(IsLetter(text[pos]) || text[pos] is (byte)'_' or (byte)':'))
            return pos;
        pos++;
        while (pos < text.Length && (IsLetter(text[pos]) || IsDigit(text[pos]) || text[pos] is (byte)'_' or (byte)':'))
            pos++;
        return pos;
    }

    private static int ScanLabelName(ReadOnlySpan<byte> text, int pos)
    {
        if (pos >= text.Length || !(IsLetter(text[pos]) || text[pos] == (byte)'_'))
            return pos;
        pos++;
        while (pos < text.Length && (IsLetter(text[pos]) || IsDigit(text[pos]) || text[pos] == (byte)'_'))
            pos++;
        return pos;
    }

    private static int ScanToken(ReadOnlySpan<byte> text, int pos)
    {
        while (pos < text.Length && !IsBlank(text[pos]))
            pos++;
        return pos;
    }

    private static int SkipBlanks(ReadOnlySpan<byte> text, int pos)
    {
        while (pos < text.Length && IsBlank(text[pos]))
            pos++;
        return pos;
    }

    private static bool IsBlank(byte b) => b is (byte)' ' or (byte)'\t';
    private static bool IsDigit(byte b) => (uint)(b - '0') <= 9;
    private static bool IsLetter(byte b) => (uint)((b | 0x20) - 'a') <= 'z' - 'a';

    private static string Found(ReadOnlySpan<byte> text, int pos)
    {
        if (pos >= text.Length)
            return ", found the end of the line";
        var b = text[pos];
        return b is >= 0x20 and < 0x7F ? $", found '{(char)b}'" : $", found byte 0x{b:X2}";
    }

    [DoesNotReturn]
    private static void ThrowInvalid(ExpositionError error) =>
        throw new InvalidTelemetryException($"Text exposition {error.Message}");
}
