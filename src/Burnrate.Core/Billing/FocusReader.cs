using System.Buffers;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using DuckDB.NET.Data;

namespace Burnrate.Billing;

/// <summary>The container of a FOCUS file.</summary>
public enum FocusFileFormat
{
    /// <summary>Comma-separated values with a header row.</summary>
    Csv,
    /// <summary>Apache Parquet.</summary>
    Parquet,
}

/// <summary>
/// Reads a FOCUS 1.0, 1.1 or 1.2 file (CSV or Parquet) through DuckDB, in batches, into <see cref="BillingLine"/>s.
/// Every value is read as text (<c>all_varchar</c> for CSV, a cast for Parquet) so that parsing — exact decimals,
/// the quirks real exports have — is ours. The cell quirks (nulls, empty strings, the text NULL, values outside an
/// allowed list) are found by DuckDB, as a small state per cell, so only the columns a <see cref="BillingLine"/> holds
/// (and odd values that need a closer look) cross into .NET as strings. <see cref="OpenAsync"/> validates the
/// header: a missing mandatory column of the file's version is a <see cref="FocusFileException"/> naming it.
/// </summary>
public sealed class FocusReader : IAsyncDisposable
{
    private static readonly string[] s_chargeCategories = ["Usage", "Purchase", "Tax", "Credit", "Adjustment"];
    private static readonly string[] s_chargeClasses = ["Correction"];
    private static readonly string[] s_chargeFrequencies = ["One-Time", "Recurring", "Usage-Based"];
    private static readonly string[] s_pricingCategories = ["Standard", "Dynamic", "Committed", "Other"];
    private static readonly string[] s_usedUnused = ["Used", "Unused"];
    private static readonly string[] s_commitmentCategories = ["Spend", "Usage"];

    private readonly DuckDBConnection _connection;
    private readonly DuckDBCommand _command;
    private readonly DuckDBDataReader _reader;
    private readonly string[] _header;
    private readonly int[] _nonNullable;
    private readonly Dictionary<string, int> _ordinal;
    private readonly Dictionary<int, string[]> _allowed = [];
    private readonly FocusQuirkTally _quirks = new();
    private readonly Dictionary<string, long> _byProvider = new(StringComparer.Ordinal);
    private readonly bool[] _mapped;
    private readonly int[] _resultOrdinal;
    private readonly int _masks;
    private readonly int[] _at;

    private FocusReader(string path, FocusFileFormat format, DuckDBConnection connection, DuckDBCommand command, DuckDBDataReader reader, IReadOnlyList<string> header, FocusVersion version, bool versionFromColumn)
    {
        Path = path;
        Format = format;
        _connection = connection;
        _command = command;
        _reader = reader;
        Version = version;
        VersionFromColumn = versionFromColumn;
        _header = [.. header];
        _masks = MaskColumns(_header.Length);
        _ordinal = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < _header.Length; i++)
            _ordinal.TryAdd(_header[i], i);
        _mapped = new bool[_header.Length];
        foreach (var name in s_mappedColumns)
        {
            if (_ordinal.TryGetValue(name, out var i))
                _mapped[i] = true;
        }
        _at = [.. s_mappedColumns.Select(c => _ordinal.GetValueOrDefault(c, -1))];
        _resultOrdinal = new int[_header.Length];
        Array.Fill(_resultOrdinal, -1);
        var read = ReadColumns(_header);
        for (var k = 0; k < read.Length; k++)
            _resultOrdinal[read[k]] = k;
        _nonNullable = [.. FocusColumns.Of(version).Where(c => !c.AllowsNulls && _ordinal.ContainsKey(c.Id)).Select(c => _ordinal[c.Id])];
        AddAllowed("ChargeCategory", s_chargeCategories);
        AddAllowed("ChargeClass", s_chargeClasses);
        AddAllowed("ChargeFrequency", s_chargeFrequencies);
        AddAllowed("PricingCategory", s_pricingCategories);
        AddAllowed("CommitmentDiscountStatus", s_usedUnused);
        AddAllowed("CapacityReservationStatus", s_usedUnused);
        AddAllowed("CommitmentDiscountCategory", s_commitmentCategories);
        AddHeaderQuirks(_quirks, _header, version);
    }

    /// <summary>The file read.</summary>
    public string Path { get; }

    /// <summary>CSV or Parquet.</summary>
    public FocusFileFormat Format { get; }

    /// <summary>The FOCUS version the file was read as.</summary>
    public FocusVersion Version { get; }

    /// <summary>Whether <see cref="Version"/> came from a version column (else from the column set).</summary>
    public bool VersionFromColumn { get; }

    /// <summary>The file's column names, in order.</summary>
    public IReadOnlyList<string> Header => _header;

    /// <summary>Data rows read so far.</summary>
    public long RowsRead { get; private set; }

    /// <summary>Rows read but not imported (see <see cref="Quirks"/>, action <see cref="QuirkAction.Skipped"/>).</summary>
    public long RowsSkipped { get; private set; }

    /// <summary>Imported rows per ProviderName.</summary>
    public IReadOnlyDictionary<string, long> RowsByProvider => _byProvider;

    /// <summary>The quirks seen so far.</summary>
    public IReadOnlyList<FocusQuirk> Quirks => _quirks.ToList();

    /// <summary>Parquet by extension or by its <c>PAR1</c> magic bytes; CSV otherwise.</summary>
    public static FocusFileFormat DetectFormat(string path)
    {
        if (path.EndsWith(".parquet", StringComparison.OrdinalIgnoreCase))
            return FocusFileFormat.Parquet;
        try
        {
            using var stream = File.OpenRead(path);
            Span<byte> magic = stackalloc byte[4];
            return stream.ReadAtLeast(magic, 4, throwOnEndOfStream: false) == 4 && magic.SequenceEqual("PAR1"u8)
                ? FocusFileFormat.Parquet
                : FocusFileFormat.Csv;
        }
        catch (IOException)
        {
            return FocusFileFormat.Csv;
        }
    }

    /// <summary>Opens <paramref name="path"/>, detects its format and FOCUS version, and checks its mandatory columns.</summary>
    /// <exception cref="FocusFileException">The file is unreadable or lacks a mandatory column of its version.</exception>
    public static async Task<FocusReader> OpenAsync(string path, CancellationToken cancellationToken = default)
    {
        var connection = new DuckDBConnection("Data Source=:memory:");
        DuckDBCommand? command = null;
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            var shape = await InspectAsync(connection, path, cancellationToken).ConfigureAwait(false);
            command = connection.CreateCommand();
            command.CommandText = MaskedSelectSql(shape);
            DuckDBDataReader reader;
            try
            {
                reader = (DuckDBDataReader)await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (DuckDBException e)
            {
                throw Unreadable(path, shape.Format, e);
            }
            return new FocusReader(path, shape.Format, connection, command, reader, shape.Header, shape.Version, shape.VersionFromColumn);
        }
        catch
        {
            command?.Dispose();
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Detects the format and FOCUS version of <paramref name="path"/> and checks its mandatory columns, reading
    /// only its header (and, where there is one, the first value of its version column) through <paramref name="connection"/>.
    /// </summary>
    /// <exception cref="FocusFileException">The file is unreadable, a provider's native export, or lacks a mandatory column of its version.</exception>
    internal static async Task<FocusFileShape> InspectAsync(DuckDBConnection connection, string path, CancellationToken cancellationToken)
    {
        if (!File.Exists(path))
            throw new FocusFileException($"FOCUS file not found: {path}");
        var format = DetectFormat(path);
        var (header, dialect) = await HeaderAsync(connection, path, format, cancellationToken).ConfigureAwait(false);
        if (NativeExport(header) is { } native)
        {
            throw new FocusFileException(
                $"{System.IO.Path.GetFileName(path)} is {native}, not FOCUS; Burnrate reads FOCUS 1.0-1.2 only: export the bill as FOCUS (docs/billing.md#native-exports).",
                FocusColumns.MandatoryOf(FocusVersion.V1_0).First(c => !header.Contains(c.Id, StringComparer.Ordinal)).Id, FocusVersion.V1_0);
        }
        var (version, fromColumn) = await VersionOfAsync(connection, path, format, dialect, header, cancellationToken).ConfigureAwait(false);
        foreach (var column in FocusColumns.MandatoryOf(version))
        {
            if (!header.Contains(column.Id, StringComparer.Ordinal))
            {
                var hint = header.FirstOrDefault(h => string.Equals(h, column.Id, StringComparison.OrdinalIgnoreCase)) is { } near
                    ? $" (the file has '{near}'; FOCUS column names are case-sensitive)"
                    : "";
                throw new FocusFileException(
                    $"{System.IO.Path.GetFileName(path)} lacks the mandatory FOCUS {version.Name()} column '{column.Id}'{hint}.", column.Id, version);
            }
        }
        return new FocusFileShape(path, format, header, version, fromColumn, dialect);
    }

    // The header; for CSV also its dialect, which every later read of the file passes instead of sniffing it again:
    // the first record where it is plainly a FOCUS header, else what DuckDB's sniffer finds (sniff_csv: the same sniff
    // read_csv makes; it finds a title line above the header, a comment character, and names as DuckDB gives them).
    private static async Task<(List<string> Header, string? Dialect)> HeaderAsync(DuckDBConnection connection, string path, FocusFileFormat format, CancellationToken cancellationToken)
    {
        using var probe = connection.CreateCommand();
        try
        {
            if (format == FocusFileFormat.Parquet)
            {
                probe.CommandText = "SELECT * FROM (" + SelectSql(path, format) + ") LIMIT 0";
                await using var empty = await probe.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                return ([.. Enumerable.Range(0, empty.FieldCount).Select(empty.GetName)], null);
            }
            if (PlainCsvHeader(path) is { } plain)
                return (plain, CsvDialect(0, "", plain));
            probe.CommandText = $"SELECT SkipRows, Comment, [c.name FOR c IN Columns] FROM sniff_csv({Literal(path)}, {CsvOptions})";
            await using var sniffed = await probe.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await sniffed.ReadAsync(cancellationToken).ConfigureAwait(false);
            var header = ((System.Collections.IEnumerable)sniffed.GetValue(2)).Cast<string>().ToList();
            // sniff_csv spells "no comment" as "(empty)".
            var comment = sniffed.IsDBNull(1) ? "" : sniffed.GetString(1);
            var dialect = CsvDialect(Convert.ToInt64(sniffed.GetValue(0), CultureInfo.InvariantCulture), comment.Length == 1 ? comment : "", header);
            return (header, dialect);
        }
        catch (DuckDBException e)
        {
            throw Unreadable(path, format, e);
        }
    }

    // The read_csv options of a file whose dialect is known. The new line is left to the reader, which takes \n, \r\n
    // and \r alike: told new_line = '\r\n', DuckDB 1.5's strict reader read no row of a CRLF file, and said nothing.
    private static string CsvDialect(long skip, string comment, IEnumerable<string> header) => string.Create(CultureInfo.InvariantCulture,
        $"auto_detect = false, skip = {skip}, comment = {Literal(comment)}, columns = {{{string.Join(", ", header.Select(h => Literal(h) + ": 'VARCHAR'"))}}}");

    /// <summary>
    /// The first record of a CSV file, read here when it is plainly a FOCUS header: it names BilledCost and
    /// ChargePeriodStart (so no title line stands above it), and every name is distinct, not empty and without
    /// surrounding spaces (DuckDB would rename those). That spares the sniff, which costs as much as a tenth of
    /// importing a 200,000-row file. Null otherwise (DuckDB's sniffer then finds the header, the rows to skip above it
    /// and the names).
    /// </summary>
    internal static List<string>? PlainCsvHeader(string path)
    {
        var bytes = ArrayPool<byte>.Shared.Rent(1 << 20);
        try
        {
            return PlainCsvHeader(path, bytes);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(bytes);
        }
    }

    private static List<string>? PlainCsvHeader(string path, byte[] bytes)
    {
        int read;
        try
        {
            using var stream = File.OpenRead(path);
            read = stream.ReadAtLeast(bytes, bytes.Length, throwOnEndOfStream: false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        // Quotes, commas and line ends are ASCII, never part of a UTF-8 sequence: the record's end is found in the bytes.
        var start = read >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF ? 3 : 0;
        var end = start;
        for (var quoted = false; end < read && (quoted || (bytes[end] != (byte)'\n' && bytes[end] != (byte)'\r')); end++)
        {
            if (bytes[end] == (byte)'"')
                quoted = !quoted;
        }
        if (end == read && read == bytes.Length)
            return null;
        string text;
        try
        {
            text = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true).GetString(bytes, start, end - start);
        }
        catch (DecoderFallbackException)
        {
            return null;
        }

        var names = new List<string>();
        var name = new StringBuilder();
        var inQuotes = false;
        var wasQuoted = false;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (inQuotes)
            {
                if (c != '"')
                    name.Append(c);
                else if (i + 1 < text.Length && text[i + 1] == '"')
                    name.Append(text[++i]);
                else
                    inQuotes = false;
            }
            else if (c == ',')
            {
                names.Add(name.ToString());
                name.Clear();
                wasQuoted = false;
            }
            else if (c == '"' && name.Length == 0 && !wasQuoted)
            {
                inQuotes = wasQuoted = true;
            }
            else if (c == '"' || wasQuoted)
            {
                return null;
            }
            else
            {
                name.Append(c);
            }
        }
        if (inQuotes)
            return null;
        names.Add(name.ToString());
        var plain = names.All(n => n.Length > 0 && n.Trim() == n) && names.Distinct(StringComparer.Ordinal).Count() == names.Count
            && names.Contains("BilledCost", StringComparer.Ordinal) && names.Contains("ChargePeriodStart", StringComparer.Ordinal);
        return plain ? names : null;
    }

    private static string Literal(string text) => "'" + text.Replace("'", "''", StringComparison.Ordinal) + "'";

    internal static FocusFileException Unreadable(string path, FocusFileFormat format, DuckDBException e) =>
        new($"{System.IO.Path.GetFileName(path)} cannot be read as FOCUS {format.ToString().ToUpperInvariant()}: {e.Message}", e);

    /// <summary>The quirks of a header: each column that is neither FOCUS nor an <c>x_</c> extension.</summary>
    internal static void AddHeaderQuirks(FocusQuirkTally quirks, IReadOnlyList<string> header, FocusVersion version)
    {
        foreach (var name in header)
        {
            if (FocusColumns.Find(name) is null && !name.StartsWith("x_", StringComparison.Ordinal) && !IsVersionColumn(name))
                quirks.Add("non-spec-column", name, QuirkAction.Kept, 0, FocusQuirkDetail.NonSpecColumn(name, version));
        }
    }

    /// <summary>Counts the file's data rows (a separate pass; Parquet answers from its footer).</summary>
    public static async Task<long> CountRowsAsync(string path, CancellationToken cancellationToken = default)
    {
        var format = DetectFormat(path);
        await using var connection = new DuckDBConnection("Data Source=:memory:");
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT count(*) FROM (" + SelectSql(path, format) + ")";
        return Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), CultureInfo.InvariantCulture);
    }

    /// <summary>The SQL that reads a file as text columns (a CSV file with the options its sniff found, where known).</summary>
    // Rows in file order, as every row number reported depends on it. Streamed to a client, DuckDB's parallel readers
    // do not keep a file's order (a 60,000-row CSV or a Parquet file of several row groups came back numbered out of
    // order): streamed, CSV is read on one thread, Parquet sorted by its own row numbers.
    internal static string SelectSql(string path, FocusFileFormat format, string? csvDialect = null) =>
        format == FocusFileFormat.Parquet
            ? $"SELECT CAST(COLUMNS(* EXCLUDE (file_row_number)) AS VARCHAR) FROM read_parquet({Literal(path)}, file_row_number = true) ORDER BY file_row_number"
            : $"SELECT * FROM read_csv({Literal(path)}, {CsvOptions}{(csvDialect is null ? "" : ", " + csvDialect)}, parallel = false)";

    /// <summary>
    /// The SQL that reads a file as text columns into a table, on every thread: DuckDB keeps a file's row order when it
    /// inserts a scan into a table (with <c>preserve_insertion_order</c>, its default), so the table's <c>rowid</c> is
    /// the file's data row number less one. Streamed to a client, the same parallel read is not in file order. A CSV
    /// file is read with the options its sniff found (<see cref="FocusFileShape.CsvDialect"/>), not sniffed again;
    /// <paramref name="strict"/>, as a well-formed file, on every thread; otherwise as the reader reads it (DuckDB's
    /// lenient mode, which its parallel reader cannot use on a file of more than a few buffers), on one thread.
    /// </summary>
    internal static string TableSelectSql(FocusFileShape shape, bool strict) =>
        shape.Format == FocusFileFormat.Parquet
            ? $"SELECT CAST(COLUMNS(*) AS VARCHAR) FROM read_parquet({Literal(shape.Path)})"
            : $"SELECT * FROM read_csv({Literal(shape.Path)}, {(strict ? CsvStrictOptions : CsvOptions + ", parallel = false")}{(shape.CsvDialect is null ? "" : ", " + shape.CsvDialect)})";

    private const string CsvStrictOptions = "all_varchar = true, header = true, delim = ',', quote = '\"', escape = '\"', strict_mode = true";
    private const string CsvOptions = "all_varchar = true, header = true, delim = ',', quote = '\"', escape = '\"', strict_mode = false";

    // Cell states computed by DuckDB, 3 bits a column, 21 columns to a BIGINT: what Normalize and the null check
    // would find, so that .NET reads a value only where it needs it (a mapped column, or one to check by hand).
    private const int StateOk = 0, StateNull = 1, StateEmpty = 2, StateNullString = 3, StateCheck = 4;
    private const int ColumnsPerMask = 21;

    private static int MaskColumns(int columns) => (columns + ColumnsPerMask - 1) / ColumnsPerMask;

    /// <summary>
    /// The header positions of the columns read as text: those <c>MapRow</c> reads and those whose odd values need a
    /// look in .NET (the ones with allowed values). The others are only ever seen through their state.
    /// </summary>
    internal static int[] ReadColumns(IReadOnlyList<string> header) =>
        [.. Enumerable.Range(0, header.Count).Where(i =>
            (Array.IndexOf(s_mappedColumns, header[i]) >= 0 && !header.Take(i).Contains(header[i], StringComparer.Ordinal)) || AllowedOf(header[i]) is not null)];

    /// <summary>The columns of <see cref="ReadColumns"/> as text, then the cell-state masks of every column.</summary>
    internal static string MaskedSelectSql(FocusFileShape shape)
    {
        var header = shape.Header;
        static string Quote(string name) => "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
        var sql = new StringBuilder("SELECT ");
        foreach (var i in ReadColumns(header))
            sql.Append(Quote(header[i])).Append(", ");
        for (var m = 0; m < MaskColumns(header.Count); m++)
        {
            sql.Append(m > 0 ? ", (" : "(");
            for (var i = m * ColumnsPerMask; i < Math.Min(header.Count, (m + 1) * ColumnsPerMask); i++)
            {
                var name = Quote(header[i]);
                if (i > m * ColumnsPerMask)
                    sql.Append(" | ");
                sql.Append(CultureInfo.InvariantCulture, $"((CASE WHEN {name} IS NULL THEN {StateNull} WHEN {name} = '' THEN {StateEmpty} WHEN {name} = 'NULL' THEN {StateNullString}");
                if (AllowedOf(header[i]) is { } allowed)
                    sql.Append(CultureInfo.InvariantCulture, $" WHEN {name} NOT IN ({string.Join(", ", allowed.Select(a => "'" + a + "'"))}) THEN {StateCheck}");
                sql.Append(CultureInfo.InvariantCulture, $" ELSE {StateOk} END)::BIGINT << {3 * (i - m * ColumnsPerMask)})");
            }
            sql.Append(')');
        }
        sql.Append(" FROM (").Append(SelectSql(shape.Path, shape.Format, shape.CsvDialect)).Append(')');
        return sql.ToString();
    }

    internal static string[]? AllowedOf(string column) => column switch
    {
        "ChargeCategory" => s_chargeCategories,
        "ChargeClass" => s_chargeClasses,
        "ChargeFrequency" => s_chargeFrequencies,
        "PricingCategory" => s_pricingCategories,
        "CommitmentDiscountStatus" or "CapacityReservationStatus" => s_usedUnused,
        "CommitmentDiscountCategory" => s_commitmentCategories,
        _ => null,
    };

    /// <summary>Names a provider's own (non-FOCUS) export format when the header is one, else null.</summary>
    internal static string? NativeExport(IReadOnlyCollection<string> header)
    {
        if (header.Contains("BilledCost"))
            return null;
        if (header.Contains("lineItem/UnblendedCost") || header.Contains("line_item_unblended_cost"))
            return "an AWS Cost and Usage Report (CUR)";
        if (header.Contains("CostInBillingCurrency") || header.Contains("MeterCategory"))
            return "an Azure EA / Cost Management cost export";
        if (header.Contains("cost/myCost") || header.Contains("lineItem/referenceNo"))
            return "an OCI cost report";
        return null;
    }

    private static bool IsVersionColumn(string name) =>
        name is "FocusVersion" or "x_FocusVersion" or "x_SourceVersion";

    private static async Task<(FocusVersion, bool)> VersionOfAsync(DuckDBConnection connection, string path, FocusFileFormat format, string? csvDialect, List<string> header, CancellationToken cancellationToken)
    {
        var column = header.FirstOrDefault(IsVersionColumn);
        if (column is not null)
        {
            using var command = connection.CreateCommand();
            command.CommandText = $"SELECT \"{column.Replace("\"", "\"\"", StringComparison.Ordinal)}\" FROM ({SelectSql(path, format, csvDialect)}) WHERE \"{column}\" IS NOT NULL LIMIT 1";
            if (FocusColumns.ParseVersion(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as string) is { } stated)
                return (stated, true);
        }
        return (FocusColumns.DetectVersion(header), false);
    }

    private void AddAllowed(string column, string[] values)
    {
        if (_ordinal.TryGetValue(column, out var i))
            _allowed[i] = values;
    }

    /// <summary>Reads the rest of the file in batches of at most <paramref name="batchSize"/> lines.</summary>
    public async IAsyncEnumerable<IReadOnlyList<BillingLine>> ReadBatchesAsync(int batchSize = 8192, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        var values = new string?[_header.Length];
        var masks = new long[_masks];
        var firstMask = _reader.FieldCount - _masks;
        var batch = new List<BillingLine>(Math.Min(batchSize, 65536));
        while (await _reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var row = ++RowsRead;
            for (var m = 0; m < masks.Length; m++)
                masks[m] = _reader.GetInt64(firstMask + m);
            for (var i = 0; i < values.Length; i++)
            {
                var state = (int)(masks[i / ColumnsPerMask] >> (3 * (i % ColumnsPerMask))) & 7;
                values[i] = state switch
                {
                    StateOk => _mapped[i] ? _reader.GetString(_resultOrdinal[i]) : Unread,
                    StateNull => null,
                    // Empty and "NULL": Normalize reports them without needing the text.
                    StateEmpty => Normalize(i, row, ""),
                    StateNullString => Normalize(i, row, "NULL"),
                    _ => Normalize(i, row, _reader.GetString(_resultOrdinal[i])),
                };
            }
            if (MapRow(row, values) is { } line)
            {
                batch.Add(line);
                _byProvider[line.Provider] = _byProvider.GetValueOrDefault(line.Provider) + 1;
                if (batch.Count >= batchSize)
                {
                    yield return batch;
                    batch = new List<BillingLine>(Math.Min(batchSize, 65536));
                }
            }
            else
            {
                RowsSkipped++;
            }
        }
        if (batch.Count > 0)
            yield return batch;
    }

    // A column MapRow does not read, known (from its state) to be a valid non-null value: only its nullness matters.
    private const string Unread = "\u0000";

    // The columns MapRow reads; the others are checked in DuckDB and never read as text unless odd.
    /// <summary>The FOCUS columns a <see cref="BillingLine"/> is made of.</summary>
    internal static IReadOnlyList<string> MappedColumns => s_mappedColumns;

    private static readonly string[] s_mappedColumns =
    [
        "AvailabilityZone", "RegionId", "RegionName", "BilledCost", "EffectiveCost", "ChargePeriodStart", "ChargePeriodEnd",
        "ProviderName", "BillingAccountId", "SubAccountId", "ResourceId", "ResourceName", "ResourceType", "ServiceName",
        "ServiceCategory", "SkuId", "ChargeCategory", "PricingCategory", "ChargeDescription", "ListCost", "ContractedCost",
        "ConsumedQuantity", "ConsumedUnit", "BillingCurrency", "Tags",
    ];

    private string? Normalize(int column, long row, string? value)
    {
        if (value is null)
            return null;
        if (value.Length == 0)
        {
            _quirks.Add("empty-string", _header[column], QuirkAction.Fixed, row, FocusQuirkDetail.EmptyString);
            return null;
        }
        if (value == "NULL")
        {
            _quirks.Add("null-string", _header[column], QuirkAction.Fixed, row, FocusQuirkDetail.NullString);
            return null;
        }
        if (_allowed.TryGetValue(column, out var allowed) && Array.IndexOf(allowed, value) < 0)
        {
            foreach (var a in allowed)
            {
                if (string.Equals(a, value, StringComparison.OrdinalIgnoreCase))
                {
                    _quirks.Add("case", _header[column], QuirkAction.Fixed, row, FocusQuirkDetail.Case(value, a));
                    return a;
                }
            }
            _quirks.Add("unknown-value", _header[column], QuirkAction.Kept, row, FocusQuirkDetail.UnknownValue(value));
        }
        return value;
    }

    private string? Value(string?[] values, int mapped)
    {
        var i = _at[mapped];
        return i < 0 ? null : values[i];
    }

    // Indexes into s_mappedColumns.
    private static class C
    {
        public const int AvailabilityZone = 0;
        public const int RegionId = 1;
        public const int RegionName = 2;
        public const int BilledCost = 3;
        public const int EffectiveCost = 4;
        public const int ChargePeriodStart = 5;
        public const int ChargePeriodEnd = 6;
        public const int ProviderName = 7;
        public const int BillingAccountId = 8;
        public const int SubAccountId = 9;
        public const int ResourceId = 10;
        public const int ResourceName = 11;
        public const int ResourceType = 12;
        public const int ServiceName = 13;
        public const int ServiceCategory = 14;
        public const int SkuId = 15;
        public const int ChargeCategory = 16;
        public const int PricingCategory = 17;
        public const int ChargeDescription = 18;
        public const int ListCost = 19;
        public const int ContractedCost = 20;
        public const int ConsumedQuantity = 21;
        public const int ConsumedUnit = 22;
        public const int BillingCurrency = 23;
        public const int Tags = 24;
    }

    private BillingLine? MapRow(long row, string?[] values)
    {
        foreach (var i in _nonNullable)
        {
            if (values[i] is null)
                _quirks.Add("null-in-non-nullable", _header[i], QuirkAction.Kept, row, FocusQuirkDetail.NullInNonNullable(_header[i]));
        }

        var zone = Value(values, C.AvailabilityZone);
        if (zone is not null && decimal.TryParse(zone, NumberStyles.Float, CultureInfo.InvariantCulture, out _))
        {
            _quirks.Add("shifted-value", "AvailabilityZone", QuirkAction.Fixed, row, FocusQuirkDetail.ShiftedZone);
            zone = null;
        }

        var regionId = Value(values, C.RegionId);
        var regionName = Value(values, C.RegionName);
        if (regionId is null && regionName is not null && LooksLikeRegionId(regionName))
        {
            _quirks.Add("shifted-value", "RegionId", QuirkAction.Fixed, row, FocusQuirkDetail.ShiftedRegion);
            regionId = regionName;
        }

        if (!TryDecimal(Value(values, C.BilledCost), out var billed)
            || !TryDecimal(Value(values, C.EffectiveCost), out var effective)
            || !TryTime(Value(values, C.ChargePeriodStart), out var start)
            || !TryTime(Value(values, C.ChargePeriodEnd), out var end))
        {
            _quirks.Add("unreadable", "", QuirkAction.Skipped, row, FocusQuirkDetail.Unreadable);
            return null;
        }

        return new BillingLine(
            row,
            Value(values, C.ProviderName) ?? "",
            Value(values, C.BillingAccountId) ?? "",
            Value(values, C.SubAccountId),
            Value(values, C.ResourceId),
            Value(values, C.ResourceName),
            Value(values, C.ResourceType),
            regionId,
            zone,
            Value(values, C.ServiceName) ?? "",
            Value(values, C.ServiceCategory),
            Value(values, C.SkuId),
            Value(values, C.ChargeCategory) ?? "",
            Value(values, C.PricingCategory),
            Value(values, C.ChargeDescription),
            start,
            end,
            billed,
            effective,
            OptionalDecimal(row, values, C.ListCost),
            OptionalDecimal(row, values, C.ContractedCost),
            OptionalDecimal(row, values, C.ConsumedQuantity),
            Value(values, C.ConsumedUnit),
            Value(values, C.BillingCurrency) ?? "",
            Value(values, C.Tags));
    }

    private decimal? OptionalDecimal(long row, string?[] values, int mapped)
    {
        var column = s_mappedColumns[mapped];
        var text = Value(values, mapped);
        if (text is null)
            return null;
        if (TryDecimal(text, out var value))
            return value;
        _quirks.Add("not-a-number", column, QuirkAction.Fixed, row, FocusQuirkDetail.NotANumber(column));
        return null;
    }

    private static bool LooksLikeRegionId(string text)
    {
        foreach (var c in text)
        {
            if (!(char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-'))
                return false;
        }
        return text.Contains('-', StringComparison.Ordinal);
    }

    internal static bool TryDecimal(string? text, out decimal value)
    {
        value = 0;
        return text is not null && decimal.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out value);
    }

    internal static bool TryTime(string? text, out DateTimeOffset value)
    {
        if (text is { Length: 19 or 20 } && TryPlainUtc(text, out value))
            return true;
        value = default;
        return text is not null && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture,
            DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out value);
    }

    // "yyyy-MM-dd HH:mm:ss" or "yyyy-MM-ddTHH:mm:ss", optionally with a Z: what the general parse reads as the same
    // UTC instant, without its cost. Anything else (or out of range) goes to the general parse.
    private static bool TryPlainUtc(string t, out DateTimeOffset value)
    {
        value = default;
        if ((t.Length == 20 && t[19] != 'Z') || t[4] != '-' || t[7] != '-' || (t[10] != ' ' && t[10] != 'T') || t[13] != ':' || t[16] != ':')
            return false;
        if (!Digits(t, 0, 4, out var year) || !Digits(t, 5, 2, out var month) || !Digits(t, 8, 2, out var day)
            || !Digits(t, 11, 2, out var hour) || !Digits(t, 14, 2, out var minute) || !Digits(t, 17, 2, out var second))
            return false;
        if (year < 1 || month is < 1 or > 12 || day < 1 || day > DateTime.DaysInMonth(year, month) || hour > 23 || minute > 59 || second > 59)
            return false;
        value = new DateTimeOffset(year, month, day, hour, minute, second, TimeSpan.Zero);
        return true;
    }

    private static bool Digits(string text, int start, int count, out int value)
    {
        value = 0;
        for (var i = start; i < start + count; i++)
        {
            if (!char.IsAsciiDigit(text[i]))
                return false;
            value = value * 10 + (text[i] - '0');
        }
        return true;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _reader.DisposeAsync().ConfigureAwait(false);
        _command.Dispose();
        await _connection.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>A one-paragraph summary for logs.</summary>
    public override string ToString()
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"{System.IO.Path.GetFileName(Path)}: FOCUS {Version.Name()} {Format}, {RowsRead} rows read, {RowsSkipped} skipped");
        return text.ToString();
    }
}
