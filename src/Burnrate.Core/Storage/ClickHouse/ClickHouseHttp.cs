using System.Globalization;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;

namespace Burnrate.Storage.ClickHouse;

/// <summary>
/// The error ClickHouse answered with: its code (the number after <c>Code:</c>) and the server's text.
/// </summary>
public sealed class ClickHouseException : Exception
{
    /// <summary>Creates the exception for an answer of <paramref name="status"/> with body <paramref name="message"/>.</summary>
    public ClickHouseException(int code, HttpStatusCode status, string message)
        : base(message)
    {
        Code = code;
        Status = status;
    }

    /// <summary>Creates an exception without a server code.</summary>
    public ClickHouseException(string message) : base(message)
    {
    }

    /// <summary>Creates an exception without a server code, wrapping <paramref name="inner"/>.</summary>
    public ClickHouseException(string message, Exception inner) : base(message, inner)
    {
    }

    /// <summary>Creates an exception without a message.</summary>
    public ClickHouseException()
    {
    }

    /// <summary>ClickHouse's error code, or 0 when the answer had none.</summary>
    public int Code { get; }

    /// <summary>The HTTP status of the answer.</summary>
    public HttpStatusCode Status { get; }
}

/// <summary>
/// A thin client for ClickHouse's HTTP interface that speaks only what Debian's ClickHouse 18.16 and current
/// servers both accept: statements in the POST body (or in <c>?query=</c> with the rows as the body), settings
/// as URL parameters, results as TSV, no query parameters (values are formatted as literals here).
/// </summary>
/// <remarks>
/// A request goes to the first server that accepts a connection; after one fails to connect, the next one is preferred.
/// Every server of a cluster holds the same <c>Distributed</c> tables, so any of them can answer.
/// </remarks>
internal sealed partial class ClickHouseHttp : IDisposable
{
    private readonly HttpClient _http;
    private readonly IReadOnlyList<Uri> _servers;
    private readonly string _database;
    private readonly string? _user;
    private readonly string? _password;
    private readonly TimeProvider _time;
    private int _preferred;

    public ClickHouseHttp(IReadOnlyList<Uri> servers, string database, string? user, string? password, TimeSpan timeout, HttpMessageHandler? handler = null, TimeProvider? time = null)
    {
        if (servers.Count == 0)
            throw new ArgumentException("At least one ClickHouse URL is needed.", nameof(servers));
        _servers = servers;
        _database = database;
        _user = user;
        _password = password;
        _time = time ?? TimeProvider.System;
        _http = handler is null ? new HttpClient() : new HttpClient(handler, disposeHandler: false);
        _http.Timeout = timeout;
    }

    /// <summary>Every server of the store, for statements that run on each (DDL).</summary>
    public IReadOnlyList<Uri> Servers => _servers;

    /// <summary>Runs a statement that returns nothing of interest, on any server (or on <paramref name="server"/>).</summary>
    public async Task ExecuteAsync(string sql, CancellationToken cancellationToken, Uri? server = null, bool useDatabase = true, string? settings = null) =>
        await SendAsync(sql, body: null, server, useDatabase, settings, cancellationToken).ConfigureAwait(false);

    /// <summary>Runs a query (without its FORMAT) and returns its rows as TSV fields; <c>\N</c> becomes null.</summary>
    public async Task<List<string?[]>> QueryAsync(string sql, CancellationToken cancellationToken, Uri? server = null, bool useDatabase = true)
    {
        var text = await SendAsync(sql + "\nFORMAT TabSeparated", body: null, server, useDatabase, settings: null, cancellationToken).ConfigureAwait(false);
        return ParseTsv(text);
    }

    /// <summary>Sends <paramref name="statement"/> (an <c>INSERT ... FORMAT ...</c>) with <paramref name="rows"/> as the body.</summary>
    public async Task InsertAsync(string statement, byte[] rows, int length, CancellationToken cancellationToken) =>
        await SendAsync(statement, new ReadOnlyMemory<byte>(rows, 0, length), server: null, useDatabase: true, settings: "insert_distributed_sync=1", cancellationToken).ConfigureAwait(false);

    private async Task<string> SendAsync(string sql, ReadOnlyMemory<byte>? body, Uri? server, bool useDatabase, string? settings, CancellationToken cancellationToken)
    {
        var candidates = server is not null ? [server] : Ordered();
        Exception? last = null;
        foreach (var candidate in candidates)
        {
            for (var hiccups = 0; ; hiccups++)
            {
                HttpResponseMessage response;
                try
                {
                    using var request = Request(candidate, sql, body, useDatabase, settings);
                    response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
                }
                catch (HttpRequestException ex)
                {
                    // Not reachable (or the connection broke): the next server may answer. Sending again is safe: every
                    // write replaces by key (a newer version), so a request that did land twice counts once.
                    last = ex;
                    MarkDown(candidate);
                    break;
                }
                catch (TaskCanceledException ex) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new ClickHouseException($"ClickHouse at {candidate} did not answer within {_http.Timeout.TotalSeconds:0} s.", ex);
                }
                using (response)
                {
                    var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
                    if (response.IsSuccessStatusCode)
                        return text;
                    var match = CodePattern().Match(text);
                    var code = match.Success ? int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
                    if (!IsCoordinationHiccup(code) || hiccups >= CoordinationRetries)
                        throw new ClickHouseException(code, response.StatusCode, $"ClickHouse at {candidate} answered {(int)response.StatusCode}: {text.Trim()}");
                }
                // A replicated server lost its ZooKeeper session (or is re-establishing it): the same statement goes
                // through once the session is back. Safe to repeat, as above.
                await Task.Delay(TimeSpan.FromMilliseconds(250 << hiccups), _time, cancellationToken).ConfigureAwait(false);
            }
        }
        throw new ClickHouseException($"No ClickHouse server could be reached ({string.Join(", ", candidates)}): {last?.Message}", last!);
    }

    private HttpRequestMessage Request(Uri server, string sql, ReadOnlyMemory<byte>? body, bool useDatabase, string? settings)
    {
        var query = new StringBuilder("?max_query_size=104857600");
        if (useDatabase)
            query.Append("&database=").Append(Uri.EscapeDataString(_database));
        if (settings is not null)
            query.Append('&').Append(settings);
        if (body is not null)
            query.Append("&query=").Append(Uri.EscapeDataString(sql));
        var request = new HttpRequestMessage(HttpMethod.Post, new Uri(server, query.ToString()))
        {
            Content = body is { } rows ? new ReadOnlyMemoryContent(rows) : new StringContent(sql, Encoding.UTF8, "text/plain"),
        };
        if (!string.IsNullOrEmpty(_user))
        {
            request.Headers.Add("X-ClickHouse-User", _user);
            request.Headers.Add("X-ClickHouse-Key", _password ?? "");
        }
        return request;
    }

    private List<Uri> Ordered()
    {
        var start = Volatile.Read(ref _preferred);
        var list = new List<Uri>(_servers.Count);
        for (var i = 0; i < _servers.Count; i++)
            list.Add(_servers[(start + i) % _servers.Count]);
        return list;
    }

    private void MarkDown(Uri server)
    {
        var index = -1;
        for (var i = 0; i < _servers.Count; i++)
        {
            if (_servers[i] == server)
                index = i;
        }
        if (index >= 0 && _servers.Count > 1)
            Interlocked.CompareExchange(ref _preferred, (index + 1) % _servers.Count, index);
    }

    // Retries of a statement refused for a passing ZooKeeper problem: 250 ms, 0.5 s, 1 s, 2 s, 4 s apart.
    private const int CoordinationRetries = 5;

    // KEEPER_EXCEPTION (999: connection loss, session expired), NO_ZOOKEEPER (225), TABLE_IS_READ_ONLY (242: a replicated
    // table while its session is down).
    internal static bool IsCoordinationHiccup(int code) => code is 999 or 225 or 242;

    [GeneratedRegex(@"Code: (\d+)")]
    private static partial Regex CodePattern();

    internal static List<string?[]> ParseTsv(string text)
    {
        var rows = new List<string?[]>();
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0)
                continue;
            var fields = line.Split('\t');
            var row = new string?[fields.Length];
            for (var i = 0; i < fields.Length; i++)
                row[i] = fields[i] == "\\N" ? null : Unescape(fields[i]);
            rows.Add(row);
        }
        return rows;
    }

    private static string Unescape(string field)
    {
        if (!field.Contains('\\', StringComparison.Ordinal))
            return field;
        var sb = new StringBuilder(field.Length);
        for (var i = 0; i < field.Length; i++)
        {
            var c = field[i];
            if (c != '\\' || i + 1 == field.Length)
            {
                sb.Append(c);
                continue;
            }
            var next = field[++i];
            sb.Append(next switch
            {
                't' => '\t',
                'n' => '\n',
                'r' => '\r',
                '0' => '\0',
                'b' => '\b',
                'f' => '\f',
                'a' => '\a',
                'v' => '\v',
                _ => next,
            });
        }
        return sb.ToString();
    }

    /// <summary>A string literal: quoted, with backslash and quote escaped (18.16 has no query parameters).</summary>
    internal static string Literal(string value)
    {
        var sb = new StringBuilder(value.Length + 2).Append('\'');
        foreach (var c in value)
        {
            switch (c)
            {
                case '\\': sb.Append("\\\\"); break;
                case '\'': sb.Append("\\'"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\0': sb.Append("\\0"); break;
                default: sb.Append(c); break;
            }
        }
        return sb.Append('\'').ToString();
    }

    /// <summary>A field of a TSV row sent to ClickHouse.</summary>
    internal static void AppendTsv(StringBuilder sb, string? value)
    {
        if (value is null)
        {
            sb.Append("\\N");
            return;
        }
        foreach (var c in value)
        {
            switch (c)
            {
                case '\\': sb.Append("\\\\"); break;
                case '\t': sb.Append("\\t"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\0': sb.Append("\\0"); break;
                default: sb.Append(c); break;
            }
        }
    }

    public void Dispose() => _http.Dispose();
}
