using System.CommandLine;
using System.CommandLine.Help;
using Burnrate.Cli.Verbs;
using Burnrate.Storage;

namespace Burnrate.Cli;

/// <summary>
/// The <c>burnrate</c> command line: builds the verbs and runs them with Burnrate's exit codes (0 ok, 1 runtime
/// failure, 2 usage error; errors on stderr start with <c>error: </c>).
/// </summary>
public static class BurnrateCli
{
    /// <summary>The default of <c>--data</c>.</summary>
    public const string DefaultDataDirectory = "./burnrate-data";

    /// <summary>
    /// The root command with every verb this library knows, and the global (recursive) <c>--data</c> and
    /// <c>--config</c> options. Add further verbs with <see cref="Command.Subcommands"/> and
    /// <see cref="SetGuardedAction"/>.
    /// </summary>
    public static RootCommand Build(CliServices services)
    {
        ArgumentNullException.ThrowIfNull(services);
        var root = new RootCommand("Burnrate: real-time GPU cost monitor; what your GPU workloads cost right now, to the minute, on every cloud and cluster.");
        root.Options.Add(new Option<string>("--data")
        {
            Description = "Data directory holding the ledger (burnrate.duckdb)",
            HelpName = "DIR",
            DefaultValueFactory = _ => DefaultDataDirectory,
            Recursive = true,
        });
        root.Options.Add(new Option<string?>("--config")
        {
            Description = "Configuration file (YAML); without it, built-in defaults",
            HelpName = "FILE",
            Recursive = true,
        });
        root.Subcommands.Add(ServeCommand.Create(services));
        root.Subcommands.Add(DemoCommand.Create(services));
        root.Subcommands.Add(ReportCommand.Create(services));
        root.Subcommands.Add(PricesCommand.Create(services));
        root.Subcommands.Add(AgentCommand.Create(services));
        root.Subcommands.Add(TopCommand.Create(services));
        root.Subcommands.Add(KeysCommand.Create(services));
        root.Subcommands.Add(ReconcileCommand.Create(services));
        return root;
    }

    /// <summary>Parses and runs a command line; returns the exit code.</summary>
    public static Task<int> InvokeAsync(CliServices services, IReadOnlyList<string> args, CancellationToken cancellationToken = default) =>
        InvokeAsync(Build(services), services, args, cancellationToken);

    /// <summary>Parses and runs a command line against <paramref name="root"/> (one built by <see cref="Build"/>, maybe with more verbs).</summary>
    public static async Task<int> InvokeAsync(RootCommand root, CliServices services, IReadOnlyList<string> args, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(root);
        ArgumentNullException.ThrowIfNull(services);
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0 && parse.Action is not HelpAction)
        {
            foreach (var error in parse.Errors)
                await services.Error.WriteLineAsync("error: " + error.Message).ConfigureAwait(false);
            await services.Error.WriteLineAsync("run 'burnrate --help' or 'burnrate VERB --help' for usage").ConfigureAwait(false);
            return ExitCodes.Usage;
        }
        var configuration = new InvocationConfiguration
        {
            Output = services.Out,
            Error = services.Error,
            EnableDefaultExceptionHandler = false,
        };
        return await parse.InvokeAsync(configuration, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The value of the global <c>--data</c> option.</summary>
    public static string GetDataDirectory(ParseResult parse) => parse?.GetValue<string>("--data") ?? DefaultDataDirectory;

    /// <summary>
    /// Where the ledger is: the config file's <c>storage.duckdb</c> when it sets one, else the <c>--data</c> directory
    /// (see <see cref="CliServices.LedgerPath"/>). A config file that cannot be read is a usage error.
    /// </summary>
    public static string GetLedgerLocation(ParseResult parse)
    {
        try
        {
            var config = Configuration.BurnrateConfig.Load(GetConfigFile(parse));
            return string.IsNullOrWhiteSpace(config.Storage.Duckdb) ? GetDataDirectory(parse) : config.Storage.Duckdb;
        }
        catch (Configuration.ConfigException e)
        {
            throw new CliUsageException(e.Message);
        }
    }

    /// <summary>The config's commitments and discounts (<c>commitments:</c>); a config that cannot be read or is wrong is a usage error.</summary>
    public static Pricing.Terms.PricingTerms LoadPricingTerms(ParseResult parse)
    {
        try
        {
            return Configuration.BurnrateConfig.Load(GetConfigFile(parse)).ToPricingTerms();
        }
        catch (Exception e) when (e is ArgumentException or Configuration.ConfigException)
        {
            throw new CliUsageException($"{GetConfigFile(parse) ?? "config"}: {e.Message}");
        }
    }

    /// <summary>
    /// Opens the ledger the config names for a verb that reads or imports into it (<c>report</c>, <c>reconcile</c>):
    /// ClickHouse when <c>storage.store</c> is <c>clickhouse</c>, else the DuckDB file of <see cref="GetLedgerLocation"/>
    /// (which must exist unless <paramref name="create"/>). A DuckDB file held by a running burnrate is an error that
    /// says what to do instead (<paramref name="whenLocked"/>). The caller disposes the store.
    /// </summary>
    public static async Task<(ICostStore Store, string Where)> OpenLedgerAsync(ParseResult parse, CliServices services, bool create, string whenLocked, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(services);
        var location = GetLedgerLocation(parse);
        Storage.ClickHouse.ClickHouseOptions? clickHouse;
        try
        {
            clickHouse = Configuration.BurnrateConfig.Load(GetConfigFile(parse)).ToClickHouseOptions(services.GetEnvironmentVariable);
        }
        catch (Exception e) when (e is ArgumentException or Configuration.ConfigException)
        {
            throw new CliUsageException($"{GetConfigFile(parse) ?? "config"}: {e.Message}");
        }
        if (clickHouse is not null)
        {
            // Several processes share a ClickHouse ledger: plan with the same policy as the servers that drop. (A DuckDB
            // file tells what was dropped itself.)
            var opened = await OpenClickHouseAsync(clickHouse, services, new StderrLogger(services.Error), cancellationToken).ConfigureAwait(false);
            if (opened.Store is Storage.ILedgerRetention retention)
                retention.UseRetention(Configuration.BurnrateConfig.Load(GetConfigFile(parse)).ToRetentionPolicy(), services.Time);
            return opened;
        }
        if (!create && !services.LedgerExists(location))
            throw new InvalidOperationException($"no ledger at {location}; run `burnrate demo` or `burnrate serve` first");
        try
        {
            return (await services.OpenStore(location, cancellationToken).ConfigureAwait(false), location);
        }
        catch (Exception e) when (e.Message.Contains("Could not set lock", StringComparison.OrdinalIgnoreCase))
        {
            // DuckDB lets one process open a file for writing: a running `burnrate demo` or `serve` holds it.
            throw new InvalidOperationException($"the ledger at {location} is open in a running burnrate (demo or serve); {whenLocked}", e);
        }
    }

    /// <summary>
    /// The ledger <paramref name="config"/> names for <c>serve</c>: ClickHouse when <c>storage.store</c> is
    /// <c>clickhouse</c>, else the DuckDB file of <paramref name="dataDirectory"/> (created when missing); and how the
    /// banner names it. The caller disposes the store.
    /// </summary>
    internal static async Task<(ICostStore Store, string Ledger)> OpenConfiguredStoreAsync(CliServices services, Configuration.BurnrateConfig config,
        string dataDirectory, Microsoft.Extensions.Logging.ILogger logger, CancellationToken cancellationToken)
    {
        var clickHouse = config.ToClickHouseOptions(services.GetEnvironmentVariable);
        var opened = clickHouse is null
            ? (await services.OpenStore(dataDirectory, cancellationToken).ConfigureAwait(false), Path.GetFullPath(dataDirectory))
            : await OpenClickHouseAsync(clickHouse, services, logger, cancellationToken).ConfigureAwait(false);
        // Every role plans reports with the policy (the ranges whose minutes are gone come from the rollups); the
        // housekeeper of roles all and ingest also drops.
        if (opened.Item1 is Storage.ILedgerRetention retention)
            retention.UseRetention(config.ToRetentionPolicy(), services.Time);
        return opened;
    }

    private static async Task<(ICostStore Store, string Ledger)> OpenClickHouseAsync(Storage.ClickHouse.ClickHouseOptions options, CliServices services,
        Microsoft.Extensions.Logging.ILogger logger, CancellationToken cancellationToken) =>
        (await Storage.ClickHouse.ClickHouseCostStore.OpenAsync(options, logger, services.Time, cancellationToken).ConfigureAwait(false),
            $"ClickHouse {string.Join(",", options.Urls)} database {options.Database}");

    /// <summary>The value of the global <c>--config</c> option, or null.</summary>
    public static string? GetConfigFile(ParseResult parse) => parse?.GetValue<string?>("--config");

    /// <summary>
    /// Sets a verb's action so that a <see cref="CliUsageException"/> exits 2, any other exception exits 1, and
    /// both print <c>error: MESSAGE</c> on <see cref="CliServices.Error"/>.
    /// </summary>
    public static void SetGuardedAction(Command command, CliServices services, Func<ParseResult, CancellationToken, Task<int>> action)
    {
        ArgumentNullException.ThrowIfNull(command);
        ArgumentNullException.ThrowIfNull(services);
        command.SetAction(async (parse, cancellationToken) =>
        {
            try
            {
                if (GetConfigFile(parse) is { } config && !File.Exists(config))
                    throw new CliUsageException($"--config: no file at {config}");
                return await action(parse, cancellationToken).ConfigureAwait(false);
            }
            catch (CliUsageException e)
            {
                await services.Error.WriteLineAsync("error: " + e.Message).ConfigureAwait(false);
                return ExitCodes.Usage;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                await services.Error.WriteLineAsync("error: interrupted").ConfigureAwait(false);
                return ExitCodes.Interrupted;
            }
#pragma warning disable CA1031 // The CLI's last line: every failure becomes a message and exit code 1.
            catch (Exception e)
#pragma warning restore CA1031
            {
                await services.Error.WriteLineAsync("error: " + e.Message).ConfigureAwait(false);
                return ExitCodes.Failure;
            }
        });
    }
}
