using Burnrate.Telemetry;

namespace Burnrate.Protocols.Exposition;

/// <summary>
/// What one page of text exposition held: its samples in page order, one metadata entry per metric family that had a
/// <c># HELP</c> or <c># TYPE</c> line, and (in lenient mode) the lines that were skipped and why.
/// </summary>
public sealed class ExpositionResult
{
    internal ExpositionResult(List<MetricSample> samples, List<MetricMetadata> metadata, List<ExpositionError> errors, int skippedLines)
    {
        Samples = samples;
        Metadata = metadata;
        Errors = errors;
        SkippedLines = skippedLines;
    }

    /// <summary>The samples, in the order of their lines.</summary>
    public IReadOnlyList<MetricSample> Samples { get; }

    /// <summary>
    /// Type and help per metric family, in the order the families first appear. A family with only a HELP line is
    /// <c>untyped</c>; the unit is always empty (format 0.0.4 has no UNIT line).
    /// </summary>
    public IReadOnlyList<MetricMetadata> Metadata { get; }

    /// <summary>
    /// The bad lines that were skipped, at most <see cref="ExpositionParser.MaxReportedErrors"/> of them (a page of
    /// garbage must not become a list as long as the page); <see cref="SkippedLines"/> counts them all.
    /// </summary>
    public IReadOnlyList<ExpositionError> Errors { get; }

    /// <summary>Number of lines skipped as malformed (lenient mode; always 0 in strict mode).</summary>
    public int SkippedLines { get; }
}

/// <summary>A malformed line: its 1-based line number, the 1-based byte column where reading failed, and what was expected.</summary>
public readonly record struct ExpositionError(int Line, int Column, string Reason)
{
    /// <summary>"line 12, column 34: expected …", the text strict mode throws.</summary>
    public string Message => $"line {Line}, column {Column}: {Reason}";
}

/// <summary>What kind of line <see cref="ExpositionParser.TryReadLine"/> read.</summary>
public enum ExpositionLineKind
{
    /// <summary>Empty or only whitespace.</summary>
    Blank,
    /// <summary>A comment that is not HELP or TYPE.</summary>
    Comment,
    /// <summary><c># HELP family text</c>: <see cref="ExpositionLine.MetricFamily"/> and the unescaped <see cref="ExpositionLine.Text"/>.</summary>
    Help,
    /// <summary><c># TYPE family type</c>: <see cref="ExpositionLine.MetricFamily"/> and the type in <see cref="ExpositionLine.Text"/>.</summary>
    Type,
    /// <summary>A sample: <see cref="ExpositionLine.Sample"/>.</summary>
    Sample,
    /// <summary>Malformed: <see cref="ExpositionLine.ErrorColumn"/> and <see cref="ExpositionLine.Error"/>.</summary>
    Invalid,
}

/// <summary>One line read by <see cref="ExpositionParser.TryReadLine"/>; which members are set depends on <see cref="Kind"/>.</summary>
public readonly struct ExpositionLine
{
    private ExpositionLine(ExpositionLineKind kind, MetricSample sample, string family, string text, int errorColumn, string? error)
    {
        Kind = kind;
        Sample = sample;
        MetricFamily = family;
        Text = text;
        ErrorColumn = errorColumn;
        Error = error;
    }

    /// <summary>The kind of line.</summary>
    public ExpositionLineKind Kind { get; }

    /// <summary>The sample of a <see cref="ExpositionLineKind.Sample"/> line.</summary>
    public MetricSample Sample { get; }

    /// <summary>The metric family of a HELP or TYPE line.</summary>
    public string MetricFamily { get; }

    /// <summary>The help text (unescaped) of a HELP line, or the type of a TYPE line.</summary>
    public string Text { get; }

    /// <summary>1-based byte column where an <see cref="ExpositionLineKind.Invalid"/> line failed.</summary>
    public int ErrorColumn { get; }

    /// <summary>What was expected at <see cref="ErrorColumn"/>, for an invalid line.</summary>
    public string? Error { get; }

    internal static ExpositionLine Blank { get; } = new(ExpositionLineKind.Blank, default, "", "", 0, null);
    internal static ExpositionLine Comment { get; } = new(ExpositionLineKind.Comment, default, "", "", 0, null);
    internal static ExpositionLine ForSample(MetricSample sample) => new(ExpositionLineKind.Sample, sample, "", "", 0, null);
    internal static ExpositionLine ForHelp(string family, string text) => new(ExpositionLineKind.Help, default, family, text, 0, null);
    internal static ExpositionLine ForType(string family, string type) => new(ExpositionLineKind.Type, default, family, type, 0, null);
    internal static ExpositionLine Invalid(int column, string error) => new(ExpositionLineKind.Invalid, default, "", "", column, error);
}
