using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using DuckDB.NET.Data;

namespace Burnrate.Billing;

/// <summary>
/// A FOCUS file imported by SQL inside DuckDB. One pass over the file (<see cref="StageAsync"/>) stages every data
/// row in a temporary table: the columns of a billing line, typed and with the quirks fixed, beside the state of every
/// cell of the row (packed two bits a field in a few integers: a column per cell cost a sixth of the import). A store
/// copies the readable rows from there (<see cref="LinesSql"/>) in one statement. One aggregate over the staged rows,
/// grouped by state and provider, gives the row counts, the per-provider totals and every quirk's count, first rows
/// and example. The checks and fixes are those of <see cref="FocusReader"/>, so both paths report the same quirks,
/// counts and row numbers and give the same lines.
/// </summary>
internal sealed class FocusSqlImport : IAsyncDisposable
{
    // A cell's null state (t), and a value's state in a column with allowed values (u): two-bit fields of the staged masks.
    private const int StateNull = 1, StateEmpty = 2, StateNullString = 3;
    private const int StateCase = 1, StateUnknown = 2;

    /// <summary>The staged columns a billing line is made of, in the order of the store's billing_lines after source_file.</summary>
    internal const string LineColumns =
        "source_row, provider, billing_account_id, sub_account_id, resource_id, resource_name, resource_type, region_id, "
        + "availability_zone, service_name, service_category, sku_id, charge_category, pricing_category, charge_description, "
        + "charge_period_start, charge_period_end, billed_cost, effective_cost, list_cost, contracted_cost, consumed_quantity, "
        + "consumed_unit, billing_currency, tags";

    private readonly DuckDBConnection _connection;
    private readonly FocusFileShape _shape;
    private readonly List<string> _fields;
    private readonly List<int> _allowedColumns;
    private readonly List<Probe> _probes;
    private long[] _counts = [];
    private string?[] _firstValues = [];
    private List<long>[] _firstRows = [];
    private readonly List<ProviderTotal> _providers = [];
    private DateTimeOffset? _start, _end;
    private readonly string _rawTable;
    private bool _dropped;

    private FocusSqlImport(DuckDBConnection connection, FocusFileShape shape)
    {
        _connection = connection;
        _shape = shape;
        var name = "focus_import_" + Guid.NewGuid().ToString("N");
        Table = "\"" + name + "\"";
        _rawTable = "\"" + name + "_rows\"";
        _fields = StateFields(shape.Header);
        _allowedColumns = [.. Enumerable.Range(0, shape.Header.Count).Where(i => FocusReader.AllowedOf(shape.Header[i]) is not null)];
        _probes = Probes(shape, _fields);
    }

    /// <summary>
    /// The staged rows' quoted name: a temporary view adding <c>source_row</c> (the file's data row number, from the
    /// staged table's row id: DuckDB keeps a file's order when it stores it) to the temporary table of the connection.
    /// </summary>
    public string Table { get; }

    /// <summary>CSV or Parquet.</summary>
    public FocusFileFormat Format => _shape.Format;

    /// <summary>The FOCUS version the file was read as.</summary>
    public FocusVersion Version => _shape.Version;

    /// <summary>Data rows in the file.</summary>
    public long RowsRead { get; private set; }

    /// <summary>Rows that make a billing line (the others are reported as <c>unreadable</c>).</summary>
    public long RowsImported { get; private set; }

    /// <summary>The readable rows as the columns of billing_lines after source_file, in file order.</summary>
    public string LinesSql => $"SELECT {LineColumns} FROM {Table} WHERE readable";

    /// <summary>
    /// Validates <paramref name="path"/> (its header: a missing mandatory column is a <see cref="FocusFileException"/>
    /// naming it, before anything is read or written) and stages its rows in a temporary table of <paramref name="connection"/>.
    /// </summary>
    public static async Task<FocusSqlImport> StageAsync(DuckDBConnection connection, string path, CancellationToken cancellationToken)
    {
        var shape = await FocusReader.InspectAsync(connection, path, cancellationToken).ConfigureAwait(false);
        var import = new FocusSqlImport(connection, shape);
        try
        {
            // No row_number() window: it would read the file on one thread and hold it whole before anything is stored.
            // The row numbers are the table's rowid, which follows the file's order only while DuckDB preserves
            // insertion order (its default; set again in case the connection was told otherwise).
            await import.ExecuteAsync("SET preserve_insertion_order = true", cancellationToken).ConfigureAwait(false);
            try
            {
                await import.ExecuteAsync($"CREATE TEMP TABLE {import._rawTable} AS {StageSql(shape, strict: true)}", cancellationToken).ConfigureAwait(false);
            }
            catch (DuckDBException) when (shape.Format == FocusFileFormat.Csv)
            {
                // Not a well-formed CSV (an unescaped quote, a row of more columns than the header): read it again as
                // the reader does, leniently and on one thread (the statement failed whole: nothing was staged).
                await import.ExecuteAsync($"CREATE TEMP TABLE {import._rawTable} AS {StageSql(shape, strict: false)}", cancellationToken).ConfigureAwait(false);
            }
            await import.ExecuteAsync($"CREATE TEMP VIEW {import.Table} AS SELECT rowid + 1 AS source_row, * FROM {import._rawTable}", cancellationToken).ConfigureAwait(false);
            await import.SummarizeAsync(cancellationToken).ConfigureAwait(false);
            return import;
        }
        catch (DuckDBException e)
        {
            await import.DisposeAsync().ConfigureAwait(false);
            throw FocusReader.Unreadable(path, shape.Format, e);
        }
        catch
        {
            await import.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The import's outcome under <paramref name="sourceName"/>: counts, per-provider totals, period and quirks.</summary>
    public FocusImportResult Result(string sourceName) =>
        new(sourceName, _shape.Format, _shape.Version, RowsRead, RowsImported, RowsRead - RowsImported, _providers, Quirks(), _start, _end);

    /// <summary>The readable rows as <see cref="BillingLine"/>s, in batches of at most <paramref name="batchSize"/>, in file order.</summary>
    public async IAsyncEnumerable<IReadOnlyList<BillingLine>> ReadLinesAsync(int batchSize, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        using var command = _connection.CreateCommand();
        command.CommandText = LinesSql + " ORDER BY source_row";
        using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var batch = new List<BillingLine>(batchSize);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            batch.Add(new BillingLine(
                reader.GetInt64(0), reader.GetString(1), reader.GetString(2), Text(reader, 3), Text(reader, 4),
                Text(reader, 5), Text(reader, 6), Text(reader, 7), Text(reader, 8), reader.GetString(9), Text(reader, 10),
                Text(reader, 11), reader.GetString(12), Text(reader, 13), Text(reader, 14),
                Utc(reader.GetDateTime(15)), Utc(reader.GetDateTime(16)), reader.GetDecimal(17), reader.GetDecimal(18),
                Number(reader, 19), Number(reader, 20), Number(reader, 21), Text(reader, 22), reader.GetString(23), Text(reader, 24)));
            if (batch.Count >= batchSize)
            {
                yield return batch;
                batch = new List<BillingLine>(batchSize);
            }
        }
        if (batch.Count > 0)
            yield return batch;
    }

    /// <summary>Drops the staged table.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_dropped)
            return;
        _dropped = true;
        try
        {
            await ExecuteAsync($"DROP VIEW IF EXISTS {Table}", CancellationToken.None).ConfigureAwait(false);
            await ExecuteAsync($"DROP TABLE IF EXISTS {_rawTable}", CancellationToken.None).ConfigureAwait(false);
        }
        catch (DuckDBException)
        {
            // A temporary table goes with its connection anyway.
        }
    }

    private static string? Text(System.Data.Common.DbDataReader reader, int i) => reader.IsDBNull(i) ? null : reader.GetString(i);

    private static decimal? Number(System.Data.Common.DbDataReader reader, int i) => reader.IsDBNull(i) ? null : reader.GetDecimal(i);

    private static DateTimeOffset Utc(DateTime value) => new(DateTime.SpecifyKind(value, DateTimeKind.Utc));

    private async Task ExecuteAsync(string sql, CancellationToken cancellationToken)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static string Quote(string name) => "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    private static string Literal(string text) => "'" + text.Replace("'", "''", StringComparison.Ordinal) + "'";

    private static string List(IEnumerable<string> values) => string.Join(", ", values.Select(Literal));

    // Membership without IN: DuckDB's optimizer turns an IN list of five or more constants into a join, and a join does
    // not keep the file's order, which the staged table's rowid (the row numbers) depends on.
    private static string In(string expression, IEnumerable<string> values) => $"list_contains([{List(values)}], {expression})";

    /// <summary>The SELECT that stages a file: one pass, every cell's state, the line's columns typed and fixed.</summary>
    internal static string StageSql(FocusFileShape shape, bool strict = true)
    {
        var header = shape.Header;
        var first = FirstPositions(header);
        var mapped = FocusReader.MappedColumns;
        var allowedColumns = Enumerable.Range(0, header.Count).Where(i => FocusReader.AllowedOf(header[i]) is not null).ToList();
        // The columns read past their state: those with allowed values, and the first of each mapped name.
        var kept = Enumerable.Range(0, header.Count).Where(i => allowedColumns.Contains(i) || (mapped.Contains(header[i]) && first[header[i]] == i)).ToList();

        // Level 1: each cell's null state as Normalize would find it (t), and the text of the columns read further (c).
        var cells = new StringBuilder("SELECT true AS staged");
        for (var i = 0; i < header.Count; i++)
        {
            var c = Quote(header[i]);
            cells.Append(CultureInfo.InvariantCulture,
                $", CASE WHEN {c} IS NULL THEN {StateNull} WHEN {c} = '' THEN {StateEmpty} WHEN {c} = 'NULL' THEN {StateNullString} ELSE 0 END::UTINYINT AS t{i}");
        }
        foreach (var i in kept)
            cells.Append(CultureInfo.InvariantCulture, $", {Quote(header[i])} AS c{i}");
        cells.Append(" FROM (").Append(FocusReader.TableSelectSql(shape, strict)).Append(')');

        // Level 2: the columns with allowed values: a value spelled otherwise than FOCUS does (u = case) or not allowed at all (unknown).
        var values = new StringBuilder("SELECT *");
        foreach (var i in allowedColumns)
        {
            var allowed = FocusReader.AllowedOf(header[i])!;
            values.Append(CultureInfo.InvariantCulture,
                $", CASE WHEN t{i} <> 0 OR {In($"c{i}", allowed)} THEN 0 WHEN {In($"lower(c{i})", allowed.Select(a => a.ToLowerInvariant()))} THEN {StateCase} ELSE {StateUnknown} END::UTINYINT AS u{i}");
        }
        values.Append(" FROM (").Append(cells).Append(')');

        // Level 3: the odd values (o, for the report's example) and the mapped columns as text, null where the cell is
        // null, empty or the text NULL, differently cased allowed values spelled as FOCUS does (n).
        var mappedText = new StringBuilder("SELECT *");
        foreach (var i in allowedColumns)
            mappedText.Append(CultureInfo.InvariantCulture, $", CASE WHEN u{i} <> 0 THEN c{i} END AS o{i}");
        for (var k = 0; k < mapped.Count; k++)
        {
            if (!first.TryGetValue(mapped[k], out var i))
            {
                mappedText.Append(CultureInfo.InvariantCulture, $", NULL::VARCHAR AS n{k}");
                continue;
            }
            mappedText.Append(CultureInfo.InvariantCulture, $", CASE WHEN t{i} <> 0 THEN NULL");
            if (FocusReader.AllowedOf(header[i]) is { } allowed)
            {
                mappedText.Append(CultureInfo.InvariantCulture, $" WHEN u{i} = {StateCase} THEN CASE lower(c{i})");
                foreach (var a in allowed)
                    mappedText.Append(CultureInfo.InvariantCulture, $" WHEN {Literal(a.ToLowerInvariant())} THEN {Literal(a)}");
                mappedText.Append(" END");
            }
            mappedText.Append(CultureInfo.InvariantCulture, $" ELSE c{i} END AS n{k}");
        }
        mappedText.Append(" FROM (").Append(values).Append(')');

        string N(string column) => "n" + IndexOf(mapped, column).ToString(CultureInfo.InvariantCulture);
        var states = string.Concat(Enumerable.Range(0, header.Count).Select(i => $", t{i}"))
            + string.Concat(allowedColumns.Select(i => $", u{i}, o{i}"));
        string zone = N("AvailabilityZone"), regionId = N("RegionId"), regionName = N("RegionName");
        var zoneShifted = $"({zone} IS NOT NULL AND TRY_CAST({zone} AS DECIMAL(38, 10)) IS NOT NULL)";
        // LooksLikeRegionId: lower-case letters, digits and dashes, with a dash.
        var regionShifted = $"({regionId} IS NULL AND {regionName} IS NOT NULL AND regexp_full_match({regionName}, '[a-z0-9-]*-[a-z0-9-]*'))";
        // DECIMAL(18, s) first: a 64-bit decimal parses faster than a 128-bit one (a tenth of the staging statement); a
        // value too wide for it is read again as DECIMAL(38, s), the ledger's type. The same value either way.
        string Amount(string column, int scale) => $"coalesce(TRY_CAST({N(column)} AS DECIMAL(18, {scale})), TRY_CAST({N(column)} AS DECIMAL(38, {scale})))";
        string Bad(string column, int scale) => $"({N(column)} IS NOT NULL AND {Amount(column, scale)} IS NULL)";
        var middle = $"""
            SELECT staged{states},
                coalesce({N("ProviderName")}, '') AS provider, coalesce({N("BillingAccountId")}, '') AS billing_account_id,
                {N("SubAccountId")} AS sub_account_id, {N("ResourceId")} AS resource_id, {N("ResourceName")} AS resource_name,
                {N("ResourceType")} AS resource_type,
                {regionShifted} AS region_shifted, CASE WHEN {regionShifted} THEN {regionName} ELSE {regionId} END AS region_id,
                {zoneShifted} AS zone_shifted, CASE WHEN {zoneShifted} THEN NULL ELSE {zone} END AS availability_zone,
                coalesce({N("ServiceName")}, '') AS service_name, {N("ServiceCategory")} AS service_category, {N("SkuId")} AS sku_id,
                coalesce({N("ChargeCategory")}, '') AS charge_category, {N("PricingCategory")} AS pricing_category,
                {N("ChargeDescription")} AS charge_description,
                {Time(N("ChargePeriodStart"))} AS charge_period_start, {Time(N("ChargePeriodEnd"))} AS charge_period_end,
                {Amount("BilledCost", 12)} AS billed_cost, {Amount("EffectiveCost", 12)} AS effective_cost,
                {Amount("ListCost", 12)} AS list_cost, {Bad("ListCost", 12)} AS list_bad,
                {Amount("ContractedCost", 12)} AS contracted_cost, {Bad("ContractedCost", 12)} AS contracted_bad,
                {Amount("ConsumedQuantity", 15)} AS consumed_quantity, {Bad("ConsumedQuantity", 15)} AS quantity_bad,
                {N("ConsumedUnit")} AS consumed_unit, coalesce({N("BillingCurrency")}, '') AS billing_currency, {N("Tags")} AS tags
            FROM ({mappedText})
            """;

        // Outer: the line's columns, whether it is readable, the odd values, and every state packed two bits a field.
        var layout = StateFields(header);
        var masks = new StringBuilder();
        for (var m = 0; m * FieldsPerMask < layout.Count; m++)
        {
            masks.Append(", (");
            for (var f = m * FieldsPerMask; f < Math.Min(layout.Count, (m + 1) * FieldsPerMask); f++)
                masks.Append(f > m * FieldsPerMask ? " | " : "").Append(CultureInfo.InvariantCulture, $"({layout[f]}::UBIGINT << {2 * (f % FieldsPerMask)})");
            masks.Append(CultureInfo.InvariantCulture, $") AS m{m}");
        }
        return $"""
            SELECT {LineColumns.Replace("source_row, ", "", StringComparison.Ordinal)}{string.Concat(allowedColumns.Select(i => $", o{i}"))}{masks},
                (billed_cost IS NOT NULL AND effective_cost IS NOT NULL AND charge_period_start IS NOT NULL AND charge_period_end IS NOT NULL) AS readable
            FROM ({middle})
            """;
    }

    // Two-bit fields packed in the staged masks, 32 to a UBIGINT: each column's null state, the allowed-value state of
    // the columns with allowed values, then the fixes MapRow makes.
    private const int FieldsPerMask = 32;

    private static List<string> StateFields(IReadOnlyList<string> header)
    {
        var fields = new List<string>();
        for (var i = 0; i < header.Count; i++)
            fields.Add(string.Create(CultureInfo.InvariantCulture, $"t{i}"));
        for (var i = 0; i < header.Count; i++)
        {
            if (FocusReader.AllowedOf(header[i]) is not null)
                fields.Add(string.Create(CultureInfo.InvariantCulture, $"u{i}"));
        }
        fields.AddRange(["zone_shifted", "region_shifted", "list_bad", "contracted_bad", "quantity_bad"]);
        return fields;
    }

    // TryTime: a time without an offset (or with Z) is UTC; one with an offset is moved to UTC.
    private static string Time(string text) => $"""
        CASE WHEN length({text}) = 19 AND substr({text}, 17, 1) = ':' THEN TRY_CAST({text} AS TIMESTAMP)
             WHEN regexp_matches({text}, '[0-9]:[0-9][0-9](\.[0-9]*)? ?[+-][0-9][0-9](:?[0-9][0-9])?$') THEN timezone('UTC', TRY_CAST({text} AS TIMESTAMPTZ))
             ELSE TRY_CAST({text} AS TIMESTAMP) END
        """;

    private static int IndexOf(IReadOnlyList<string> list, string value)
    {
        for (var i = 0; i < list.Count; i++)
        {
            if (list[i] == value)
                return i;
        }
        throw new ArgumentOutOfRangeException(nameof(value), value, "not a mapped column");
    }

    private static Dictionary<string, int> FirstPositions(IReadOnlyList<string> header)
    {
        var first = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < header.Count; i++)
            first.TryAdd(header[i], i);
        return first;
    }

    /// <summary>
    /// One quirk looked for: the rows it is found in (by their state), its place in a row's order of checks, and for a
    /// value quirk the column of <see cref="_allowedColumns"/> whose value the report shows.
    /// </summary>
    private sealed record Probe(string Kind, string Column, QuirkAction Action, int Rank, Func<StateGroup, bool> Matches, int? ValueColumn, Func<string?, string> Detail);

    /// <summary>The staged rows of one state (masks and readability) and provider: how many, the first, totals, odd values.</summary>
    private sealed record StateGroup(ulong[] Masks, bool Readable, string Provider, long Rows, List<long> FirstRows,
        decimal Billed, decimal Effective, DateTime? Start, DateTime? End, string?[] OddValues)
    {
        public int Field(int f) => (int)((Masks[f / FieldsPerMask] >> (2 * (f % FieldsPerMask))) & 3);
    }

    // The checks of FocusReader, in the order it makes them within a row: each column's Normalize, the non-nullable
    // columns, then MapRow's own.
    private static List<Probe> Probes(FocusFileShape shape, List<string> fields)
    {
        var header = shape.Header;
        var first = FirstPositions(header);
        int F(string name) => fields.IndexOf(name);
        string T(int i) => string.Create(CultureInfo.InvariantCulture, $"t{i}");
        var probes = new List<Probe>();
        var valueColumn = 0;
        for (var i = 0; i < header.Count; i++)
        {
            var column = header[i];
            var t = F(T(i));
            probes.Add(new Probe("empty-string", column, QuirkAction.Fixed, i, g => g.Field(t) == StateEmpty, null, _ => FocusQuirkDetail.EmptyString));
            probes.Add(new Probe("null-string", column, QuirkAction.Fixed, i, g => g.Field(t) == StateNullString, null, _ => FocusQuirkDetail.NullString));
            if (FocusReader.AllowedOf(column) is { } allowed)
            {
                var u = F(string.Create(CultureInfo.InvariantCulture, $"u{i}"));
                probes.Add(new Probe("case", column, QuirkAction.Fixed, i, g => g.Field(u) == StateCase, valueColumn,
                    v => FocusQuirkDetail.Case(v!, allowed.First(a => string.Equals(a, v, StringComparison.OrdinalIgnoreCase)))));
                probes.Add(new Probe("unknown-value", column, QuirkAction.Kept, i, g => g.Field(u) == StateUnknown, valueColumn, v => FocusQuirkDetail.UnknownValue(v!)));
                valueColumn++;
            }
        }
        var rank = header.Count;
        foreach (var column in FocusColumns.Of(shape.Version))
        {
            if (!column.AllowsNulls && first.TryGetValue(column.Id, out var i))
            {
                var t = F(T(i));
                probes.Add(new Probe("null-in-non-nullable", column.Id, QuirkAction.Kept, rank++, g => g.Field(t) != 0, null, _ => FocusQuirkDetail.NullInNonNullable(column.Id)));
            }
        }
        int zone = F("zone_shifted"), region = F("region_shifted"), list = F("list_bad"), contracted = F("contracted_bad"), quantity = F("quantity_bad");
        probes.Add(new Probe("shifted-value", "AvailabilityZone", QuirkAction.Fixed, rank++, g => g.Field(zone) == 1, null, _ => FocusQuirkDetail.ShiftedZone));
        probes.Add(new Probe("shifted-value", "RegionId", QuirkAction.Fixed, rank++, g => g.Field(region) == 1, null, _ => FocusQuirkDetail.ShiftedRegion));
        probes.Add(new Probe("unreadable", "", QuirkAction.Skipped, rank++, g => !g.Readable, null, _ => FocusQuirkDetail.Unreadable));
        probes.Add(new Probe("not-a-number", "ListCost", QuirkAction.Fixed, rank++, g => g.Readable && g.Field(list) == 1, null, _ => FocusQuirkDetail.NotANumber("ListCost")));
        probes.Add(new Probe("not-a-number", "ContractedCost", QuirkAction.Fixed, rank++, g => g.Readable && g.Field(contracted) == 1, null, _ => FocusQuirkDetail.NotANumber("ContractedCost")));
        probes.Add(new Probe("not-a-number", "ConsumedQuantity", QuirkAction.Fixed, rank, g => g.Readable && g.Field(quantity) == 1, null, _ => FocusQuirkDetail.NotANumber("ConsumedQuantity")));
        return probes;
    }

    // One aggregate: the staged rows grouped by their state and provider, each group with its count, its first row
    // numbers, its totals and the odd values of its first row. The rows, the per-provider totals and every quirk's count,
    // first rows and first value follow from the groups: a row's quirks are all in its state, and a quirk's first rows
    // are among the first rows of the groups it is found in.
    private async Task SummarizeAsync(CancellationToken cancellationToken)
    {
        var masks = (_fields.Count + FieldsPerMask - 1) / FieldsPerMask;
        var keys = string.Concat(Enumerable.Range(0, masks).Select(m => string.Create(CultureInfo.InvariantCulture, $"m{m}, ")));
        var odd = string.Concat(_allowedColumns.Select(i => string.Create(CultureInfo.InvariantCulture, $", arg_min(o{i}, source_row)")));
        using var command = _connection.CreateCommand();
        command.CommandText = string.Create(CultureInfo.InvariantCulture, $"""
            SELECT {keys}readable, provider, count(*), min(source_row, {FocusQuirkTally.RowsKept}), sum(billed_cost), sum(effective_cost),
                   min(charge_period_start), max(charge_period_end){odd}
            FROM {Table} GROUP BY ALL
            """);
        var groups = new List<StateGroup>();
        using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var at = masks;
                var readable = reader.GetBoolean(at);
                groups.Add(new StateGroup(
                    [.. Enumerable.Range(0, masks).Select(m => Convert.ToUInt64(reader.GetValue(m), CultureInfo.InvariantCulture))],
                    readable, reader.GetString(at + 1), reader.GetInt64(at + 2),
                    [.. ((System.Collections.IEnumerable)reader.GetValue(at + 3)).Cast<object>().Select(r => Convert.ToInt64(r, CultureInfo.InvariantCulture)).Order()],
                    readable ? reader.GetDecimal(at + 4) : 0m, readable ? reader.GetDecimal(at + 5) : 0m,
                    reader.IsDBNull(at + 6) ? null : reader.GetDateTime(at + 6), reader.IsDBNull(at + 7) ? null : reader.GetDateTime(at + 7),
                    [.. Enumerable.Range(0, _allowedColumns.Count).Select(v => reader.IsDBNull(at + 8 + v) ? null : reader.GetString(at + 8 + v))]));
            }
        }

        RowsRead = groups.Sum(g => g.Rows);
        RowsImported = groups.Where(g => g.Readable).Sum(g => g.Rows);
        foreach (var provider in groups.Where(g => g.Readable).GroupBy(g => g.Provider, StringComparer.Ordinal).OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            _providers.Add(new ProviderTotal(provider.Key, provider.Sum(g => g.Rows), provider.Sum(g => g.Billed), provider.Sum(g => g.Effective)));
            var first = Utc(provider.Min(g => g.Start!.Value));
            var last = Utc(provider.Max(g => g.End!.Value));
            if (_start is null || first < _start)
                _start = first;
            if (_end is null || last > _end)
                _end = last;
        }

        _counts = new long[_probes.Count];
        _firstValues = new string?[_probes.Count];
        _firstRows = new List<long>[_probes.Count];
        for (var j = 0; j < _probes.Count; j++)
        {
            var p = _probes[j];
            var found = groups.Where(p.Matches).ToList();
            _counts[j] = found.Sum(g => g.Rows);
            _firstRows[j] = [.. found.SelectMany(g => g.FirstRows).Order().Take(FocusQuirkTally.RowsKept)];
            if (p.ValueColumn is { } v && found.Count > 0)
                _firstValues[j] = found.MinBy(g => g.FirstRows[0])!.OddValues[v];
        }
    }

    // The first rows of each quirk found, merged per (kind, column) and ordered as FocusReader reports them.
    private List<FocusQuirk> Quirks()
    {
        var found = Enumerable.Range(0, _probes.Count).Where(j => _counts[j] > 0).ToList();
        var merged = new Dictionary<(string Kind, string Column), (Probe Probe, long Count, SortedSet<long> Rows, long FirstRow, int Rank, string Detail)>();
        foreach (var j in found)
        {
            var p = _probes[j];
            var mine = _firstRows[j];
            var firstRow = mine.Count > 0 ? mine[0] : long.MaxValue;
            if (merged.TryGetValue((p.Kind, p.Column), out var m))
            {
                m.Rows.UnionWith(mine);
                var earlier = (firstRow, p.Rank).CompareTo((m.FirstRow, m.Rank)) < 0;
                merged[(p.Kind, p.Column)] = (m.Probe, m.Count + _counts[j], m.Rows,
                    earlier ? firstRow : m.FirstRow, earlier ? p.Rank : m.Rank, earlier ? p.Detail(_firstValues[j]) : m.Detail);
            }
            else
            {
                merged[(p.Kind, p.Column)] = (p, _counts[j], [.. mine], firstRow, p.Rank, p.Detail(_firstValues[j]));
            }
        }

        var header = new FocusQuirkTally();
        FocusReader.AddHeaderQuirks(header, _shape.Header, _shape.Version);
        var quirks = new List<FocusQuirk>(header.ToList());
        foreach (var (key, m) in merged.OrderBy(kv => kv.Value.FirstRow).ThenBy(kv => kv.Value.Rank))
            quirks.Add(new FocusQuirk(key.Kind, key.Column, m.Probe.Action, m.Count, [.. m.Rows.Take(FocusQuirkTally.RowsKept)], m.Detail));
        return quirks;
    }
}
