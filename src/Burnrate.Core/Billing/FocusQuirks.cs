namespace Burnrate.Billing;

/// <summary>What the importer did about a quirk.</summary>
public enum QuirkAction
{
    /// <summary>The value was corrected and the row imported.</summary>
    Fixed,
    /// <summary>The row was imported as it is; the quirk is only reported.</summary>
    Kept,
    /// <summary>The row was not imported.</summary>
    Skipped,
}

/// <summary>One kind of quirk in one column of a file: how often, where first, and what was done.</summary>
/// <param name="Kind">e.g. <c>null-string</c>, <c>case</c>, <c>shifted-value</c> (see docs/billing.md).</param>
/// <param name="Column">The FOCUS column, or empty for a quirk of the whole row.</param>
/// <param name="Action">What the importer did with each such value.</param>
/// <param name="Count">How many values (rows, for row quirks) had it.</param>
/// <param name="FirstRows">The first data rows (1 = the first after the header) that had it, at most <see cref="FocusQuirkTally.RowsKept"/>.</param>
/// <param name="Detail">A sentence saying what the quirk is.</param>
public sealed record FocusQuirk(string Kind, string Column, QuirkAction Action, long Count, IReadOnlyList<long> FirstRows, string Detail);

/// <summary>Counts quirks as a file is read.</summary>
public sealed class FocusQuirkTally
{
    /// <summary>How many first row numbers each quirk keeps.</summary>
    public const int RowsKept = 10;

    private readonly Dictionary<(string Kind, string Column), Entry> _entries = [];
    private readonly List<(string Kind, string Column)> _order = [];

    /// <summary>Records one occurrence in <paramref name="row"/> (0 for a quirk of the header, not of a row).</summary>
    public void Add(string kind, string column, QuirkAction action, long row, string detail)
    {
        if (!_entries.TryGetValue((kind, column), out var entry))
        {
            entry = new Entry(action, detail);
            _entries[(kind, column)] = entry;
            _order.Add((kind, column));
        }
        entry.Count++;
        if (row > 0 && entry.FirstRows.Count < RowsKept && (entry.FirstRows.Count == 0 || entry.FirstRows[^1] != row))
            entry.FirstRows.Add(row);
    }

    /// <summary>The quirks seen so far, in the order first seen.</summary>
    public IReadOnlyList<FocusQuirk> ToList() =>
        _order.Select(k => _entries[k] is var e ? new FocusQuirk(k.Kind, k.Column, e.Action, e.Count, [.. e.FirstRows], e.Detail) : null!).ToList();

    private sealed class Entry(QuirkAction action, string detail)
    {
        public QuirkAction Action { get; } = action;
        public string Detail { get; } = detail;
        public long Count { get; set; }
        public List<long> FirstRows { get; } = [];
    }
}

/// <summary>A FOCUS file that cannot be imported at all (a mandatory column is missing, the file is unreadable).</summary>
public sealed class FocusFileException : Exception
{
    /// <summary>Creates the exception.</summary>
    public FocusFileException(string message, string? missingColumn = null, FocusVersion? version = null, Exception? inner = null)
        : base(message, inner)
    {
        MissingColumn = missingColumn;
        Version = version;
    }

    /// <summary>Creates the exception.</summary>
    public FocusFileException() : base("The FOCUS file cannot be imported.") { }

    /// <summary>Creates the exception.</summary>
    public FocusFileException(string message) : base(message) { }

    /// <summary>Creates the exception.</summary>
    public FocusFileException(string message, Exception inner) : base(message, inner) { }

    /// <summary>The first mandatory column the file lacks, when that is the reason.</summary>
    public string? MissingColumn { get; }

    /// <summary>The version the file was read as, when known.</summary>
    public FocusVersion? Version { get; }
}

/// <summary>The sentence each quirk kind is reported with, shared by every import path so the reports stay the same.</summary>
internal static class FocusQuirkDetail
{
    public const string EmptyString = "An empty quoted string where FOCUS has null; read as null.";
    public const string NullString = "The literal text NULL; read as null.";
    public const string ShiftedZone = "A number in AvailabilityZone (in the sample it is the row's ListUnitPrice, shifted into the first column); read as null.";
    public const string ShiftedRegion = "RegionId is null while RegionName holds a region id (e.g. 'us-sanjose-1'); RegionId read from RegionName.";
    public const string Unreadable = "BilledCost, EffectiveCost, ChargePeriodStart or ChargePeriodEnd is missing or not a number/time; the row is not imported.";

    public static string Case(string value, string spelled) => $"'{value}' where FOCUS spells it '{spelled}'; read as '{spelled}'.";

    public static string UnknownValue(string value) => $"A value FOCUS does not allow (e.g. '{value}'); kept as written.";

    public static string NullInNonNullable(string column) => $"Null in {column}, which FOCUS does not allow to be null; the row is imported with it empty.";

    public static string NotANumber(string column) => $"{column} is not a number; read as null.";

    public static string NonSpecColumn(string name, FocusVersion version) => $"'{name}' is neither a FOCUS {version.Name()} column nor an x_ extension; it is not imported.";
}

/// <summary>What <see cref="FocusReader.InspectAsync"/> found out about a file before reading its rows.</summary>
/// <param name="Path">The file.</param>
/// <param name="Format">CSV or Parquet.</param>
/// <param name="Header">Its columns, as DuckDB names them.</param>
/// <param name="Version">The FOCUS version it is read as.</param>
/// <param name="VersionFromColumn">Whether a version column stated it (else it was told from the columns).</param>
/// <param name="CsvDialect">
/// For a CSV file, the <c>read_csv</c> options it is read with (rows skipped above the header, comment character, the
/// columns), from its plain header or DuckDB's sniff, so that no read sniffs it again; null for Parquet.
/// </param>
internal sealed record FocusFileShape(string Path, FocusFileFormat Format, IReadOnlyList<string> Header, FocusVersion Version, bool VersionFromColumn, string? CsvDialect = null);
