using System.CommandLine;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Burnrate.Configuration;
using Burnrate.Reporting;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Burnrate.Cli.Verbs;

/// <summary>
/// <c>burnrate top</c>: a live terminal view of what is burning, polled from a running server's <c>GET /api/v1/burn</c>;
/// sortable by keys on a terminal, or one snapshot with <c>--once</c> for scripts.
/// </summary>
internal static class TopCommand
{
    internal const string DefaultServer = "http://127.0.0.1:9840";

    private static readonly string[] s_sorts = ["rate", "total", "name", "team"];

    public static Command Create(CliServices services)
    {
        var server = new Option<string>("--server")
        {
            Description = "The running server (burnrate serve or demo) to ask",
            HelpName = "URL",
            DefaultValueFactory = _ => DefaultServer,
        };
        var interval = new Option<string>("--interval")
        {
            Description = "How often to ask the server, e.g. 2s, 500ms, 1m",
            HelpName = "D",
            DefaultValueFactory = _ => "2s",
        };
        var sort = new Option<string>("--sort")
        {
            Description = "Order of the rows: rate ($/h now, highest first), total (cost so far, highest first), name or team (A to Z); on a terminal the keys r, t, n and m switch it and q quits",
            HelpName = string.Join('|', s_sorts),
            DefaultValueFactory = _ => "rate",
        };
        sort.Validators.Add(result =>
        {
            var value = result.GetValueOrDefault<string>();
            if (!s_sorts.Contains(value, StringComparer.Ordinal))
                result.AddError($"--sort: '{value}' is not a sort; use one of {string.Join(", ", s_sorts)}");
        });
        var limit = new Option<int>("--limit")
        {
            Description = "Rows shown at most (0: all)",
            HelpName = "N",
            DefaultValueFactory = _ => 20,
        };
        var once = new Option<bool>("--once") { Description = "Print one snapshot and exit (for scripts and tests)" };
        var format = new Option<string>("--format")
        {
            Description = "Output of --once: table (for people) or json (exact dollars as strings, 9 decimals)",
            DefaultValueFactory = _ => "table",
        };
        format.AcceptOnlyFromAmong("table", "json");

        var apiKeyEnv = ApiKeyOption.Create();
        var command = new Command("top", "Live terminal view of burn rates ($/h) by workload, from a running server")
        {
            server, apiKeyEnv, interval, sort, limit, once, format,
        };
        BurnrateCli.SetGuardedAction(command, services, async (parse, cancellationToken) =>
        {
            var serverUri = ReportCommand.ParseServer(parse.GetValue(server)!);
            var apiKey = ApiKeyOption.Read(services, parse.GetValue(apiKeyEnv)!);
            var intervalText = parse.GetValue(interval)!;
            if (!TryParseInterval(intervalText, out var every))
                throw new CliUsageException($"--interval: '{intervalText}' is not a positive duration (examples: 500ms, 2s, 1m)");
            var rows = parse.GetValue(limit);
            if (rows < 0)
                throw new CliUsageException($"--limit: {rows} must be 0 (all) or more");
            var view = new TopView(parse.GetValue(sort)!, rows);
            var json = parse.GetValue(format) == "json";
            if (json && !parse.GetValue(once))
                throw new CliUsageException("--format json needs --once (the live view is a table)");

            if (parse.GetValue(once))
            {
                var snapshot = await FetchAsync(services, serverUri, apiKey, cancellationToken).ConfigureAwait(false);
                if (json)
                    await services.Out.WriteAsync(view.ToJson(snapshot)).ConfigureAwait(false);
                else
                    Terminal.Create(services.Out).Write(view.Render(snapshot, serverUri, null));
                await services.Out.FlushAsync(cancellationToken).ConfigureAwait(false);
                return ExitCodes.Ok;
            }
            var interactive = ReferenceEquals(services.Out, Console.Out) && !Console.IsOutputRedirected && !Console.IsInputRedirected;
            return interactive
                ? await RunLiveAsync(services, serverUri, apiKey, every, view, cancellationToken).ConfigureAwait(false)
                : await RunPlainAsync(services, serverUri, apiKey, every, view, cancellationToken).ConfigureAwait(false);
        });
        return command;
    }

    private static bool TryParseInterval(string text, out TimeSpan interval) =>
        Durations.TryParse(text, out interval) && interval > TimeSpan.Zero;

    /// <summary>On a terminal: redraws in place every interval; keys switch the sort (r, t, n, m) or quit (q).</summary>
    private static async Task<int> RunLiveAsync(CliServices services, Uri server, string? apiKey, TimeSpan every, TopView view, CancellationToken cancellationToken)
    {
        var console = Terminal.Create(services.Out);
        var snapshot = await FetchAsync(services, server, apiKey, cancellationToken).ConfigureAwait(false); // unreachable at start: the error, exit 1
        string? problem = null;
        var quit = false;
        await console.Live(view.Render(snapshot, server, null)).StartAsync(async live =>
        {
            while (!quit && !cancellationToken.IsCancellationRequested)
            {
                var due = services.Time.GetUtcNow() + every;
                while (!quit && services.Time.GetUtcNow() < due)
                {
                    while (Console.KeyAvailable)
                    {
                        var key = char.ToLowerInvariant(Console.ReadKey(intercept: true).KeyChar);
                        if (key == 'q')
                            quit = true;
                        else if (view.TrySortByKey(key))
                            live.UpdateTarget(view.Render(snapshot, server, problem));
                    }
                    await Task.Delay(TimeSpan.FromMilliseconds(100), services.Time, cancellationToken).ConfigureAwait(false);
                }
                if (quit)
                    break;
                try
                {
                    snapshot = await FetchAsync(services, server, apiKey, cancellationToken).ConfigureAwait(false);
                    problem = null;
                }
                catch (InvalidOperationException e)
                {
                    problem = e.Message; // keep the last view, say why it is old, and keep asking
                }
                live.UpdateTarget(view.Render(snapshot, server, problem));
            }
        }).ConfigureAwait(false);
        return ExitCodes.Ok;
    }

    /// <summary>A pipe or log: a snapshot per interval, until interrupted or the server goes away.</summary>
    private static async Task<int> RunPlainAsync(CliServices services, Uri server, string? apiKey, TimeSpan every, TopView view, CancellationToken cancellationToken)
    {
        var console = Terminal.Create(services.Out);
        while (true)
        {
            var snapshot = await FetchAsync(services, server, apiKey, cancellationToken).ConfigureAwait(false);
            console.Write(view.Render(snapshot, server, null));
            await services.Out.FlushAsync(cancellationToken).ConfigureAwait(false);
            await Task.Delay(every, services.Time, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Asks <c>GET /api/v1/burn</c>; a server that cannot be reached or answers an error is an <see cref="InvalidOperationException"/> naming the URL.</summary>
    internal static async Task<BurnSnapshot> FetchAsync(CliServices services, Uri server, string? apiKey, CancellationToken cancellationToken)
    {
        var root = server.AbsoluteUri.EndsWith('/') ? server : new Uri(server.AbsoluteUri + "/");
        var body = await CostApiClient.GetJsonAsync(services, server, new Uri(root, "api/v1/burn"), apiKey, cancellationToken).ConfigureAwait(false);
        try
        {
            return BurnSnapshot.Parse(body);
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException or KeyNotFoundException)
        {
            throw new InvalidOperationException($"the server at {server} answered GET /api/v1/burn with something that is not Burnrate's burn JSON: {e.Message}", e);
        }
    }
}

/// <summary>One answer of <c>GET /api/v1/burn</c>: amounts are exact decimals.</summary>
internal sealed record BurnSnapshot(string At, decimal TotalPerHour, decimal RatedSoFar, IReadOnlyList<BurnRow> Workloads)
{
    public static BurnSnapshot Parse(string json)
    {
        using var document = JsonDocument.Parse(json);
        var root = document.RootElement;
        var rows = new List<BurnRow>();
        foreach (var w in root.GetProperty("workloads").EnumerateArray())
        {
            rows.Add(new BurnRow(
                w.GetProperty("workload").GetString() ?? "",
                w.GetProperty("name").GetString() ?? "",
                w.GetProperty("team").GetString() ?? "",
                w.GetProperty("user").GetString() ?? "",
                w.GetProperty("clouds").GetString() ?? "",
                Amount(w.GetProperty("usd_per_hour")),
                Amount(w.GetProperty("total_usd"))));
        }
        return new BurnSnapshot(root.GetProperty("at").GetString() ?? "", Amount(root.GetProperty("total_usd_per_hour")), Amount(root.GetProperty("rated_usd")), rows);
    }

    private static decimal Amount(JsonElement value) =>
        value.ValueKind == JsonValueKind.String
            ? decimal.Parse(value.GetString()!, NumberStyles.AllowDecimalPoint | NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture)
            : value.GetDecimal();
}

/// <summary>One workload's row (idle capacity has an empty id).</summary>
internal sealed record BurnRow(string Workload, string Name, string Team, string User, string Clouds, decimal PerHour, decimal Total);

/// <summary>The sort and row limit of the view, and how it draws.</summary>
internal sealed class TopView(string sort, int limit)
{
    public string Sort { get; private set; } = sort;

    public bool TrySortByKey(char key)
    {
        string? next = key switch { 'r' => "rate", 't' => "total", 'n' => "name", 'm' => "team", _ => null };
        if (next is null)
            return false;
        Sort = next;
        return true;
    }

    public IReadOnlyList<BurnRow> Rows(BurnSnapshot snapshot)
    {
        IEnumerable<BurnRow> rows = Sort switch
        {
            "total" => snapshot.Workloads.OrderByDescending(w => w.Total).ThenByDescending(w => w.PerHour),
            "name" => snapshot.Workloads.OrderBy(w => w.Name, StringComparer.Ordinal),
            "team" => snapshot.Workloads.OrderBy(w => w.Team, StringComparer.Ordinal).ThenByDescending(w => w.PerHour),
            _ => snapshot.Workloads.OrderByDescending(w => w.PerHour).ThenByDescending(w => w.Total),
        };
        rows = ((IOrderedEnumerable<BurnRow>)rows).ThenBy(w => w.Workload, StringComparer.Ordinal);
        return limit > 0 ? rows.Take(limit).ToList() : rows.ToList();
    }

    public IRenderable Render(BurnSnapshot snapshot, Uri server, string? problem)
    {
        var rows = Rows(snapshot);
        var header = new Markup(
            $"[bold]Burnrate top[/]  {Markup.Escape(server.ToString())}  at {Markup.Escape(snapshot.At)}\n" +
            $"burning [bold]{Markup.Escape(MoneyText.Display(Burnrate.Money.FromDollars(snapshot.TotalPerHour)))}/h[/]  " +
            $"rated so far [bold]{Markup.Escape(MoneyText.Display(Burnrate.Money.FromDollars(snapshot.RatedSoFar)))}[/]  " +
            $"{snapshot.Workloads.Count} workload(s), sorted by {Sort}");
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumns("workload", "name", "team", "user", "clouds")
            .AddColumn(new TableColumn("$/h").RightAligned())
            .AddColumn(new TableColumn("total $").RightAligned());
        foreach (var w in rows)
        {
            table.AddRow(
                new Text(w.Workload.Length == 0 ? "(idle capacity)" : w.Workload),
                new Text(w.Name), new Text(Dash(w.Team)), new Text(Dash(w.User)), new Text(Dash(w.Clouds)),
                new Text(w.PerHour.ToString("#,##0.00", CultureInfo.InvariantCulture)),
                new Text(w.Total.ToString("#,##0.00", CultureInfo.InvariantCulture)));
        }
        if (rows.Count < snapshot.Workloads.Count)
            table.Caption($"{rows.Count} of {snapshot.Workloads.Count} rows (--limit)");
        var parts = new List<IRenderable> { header, table };
        if (problem is not null)
            parts.Add(new Markup("[yellow]" + Markup.Escape(problem) + " (showing the last answer; retrying)[/]"));
        parts.Add(new Markup("[grey]keys: r rate  t total  n name  m team  q quit[/]"));
        return new Rows(parts);
    }

    public string ToJson(BurnSnapshot snapshot)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteString("at", snapshot.At);
            json.WriteString("total_usd_per_hour", Exact(snapshot.TotalPerHour));
            json.WriteString("rated_usd", Exact(snapshot.RatedSoFar));
            json.WriteString("sort", Sort);
            json.WriteStartArray("workloads");
            foreach (var w in Rows(snapshot))
            {
                json.WriteStartObject();
                json.WriteString("workload", w.Workload);
                json.WriteString("name", w.Name);
                json.WriteString("team", w.Team);
                json.WriteString("user", w.User);
                json.WriteString("clouds", w.Clouds);
                json.WriteString("usd_per_hour", Exact(w.PerHour));
                json.WriteString("total_usd", Exact(w.Total));
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
    }

    private static string Dash(string value) => value.Length == 0 ? "-" : value;

    private static string Exact(decimal dollars) => dollars.ToString("F9", CultureInfo.InvariantCulture);
}
