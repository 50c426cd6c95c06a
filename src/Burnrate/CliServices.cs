using Burnrate.Pricing;
using Burnrate.Storage;

namespace Burnrate.Cli;

/// <summary>
/// The composition seam of the CLI: everything a verb needs from outside (the store, the price book, the clock,
/// the console). <c>Program</c> builds the real one; tests build one with fakes.
/// </summary>
public sealed class CliServices
{
    /// <summary>The ledger's file name inside the data directory.</summary>
    public const string LedgerFileName = "burnrate.duckdb";

    /// <summary>Opens the ledger of a data directory (e.g. the DuckDB file <c>{dir}/burnrate.duckdb</c>). The caller disposes it.</summary>
    public required Func<string, CancellationToken, Task<ICostStore>> OpenStore { get; init; }

    /// <summary>Loads the price book (the built-in catalog plus the catalogs of the config file given, or null).</summary>
    public required Func<string?, IPriceBook> LoadPriceBook { get; init; }

    /// <summary>Whether a data directory holds a ledger; by default, whether <c>{dir}/burnrate.duckdb</c> exists.</summary>
    public Func<string, bool> LedgerExists { get; init; } = location => File.Exists(LedgerPath(location));

    /// <summary>
    /// The DuckDB file of a ledger location: a path ending in <c>.duckdb</c> is the file itself (the config's
    /// <c>storage.duckdb</c>); anything else is a data directory holding <see cref="LedgerFileName"/>.
    /// </summary>
    public static string LedgerPath(string location) =>
        location.EndsWith(".duckdb", StringComparison.OrdinalIgnoreCase) ? location : Path.Combine(location, LedgerFileName);

    /// <summary>Makes the client used for <c>--server</c>. The caller disposes it.</summary>
    public Func<HttpClient> CreateHttpClient { get; init; } = () => new HttpClient { Timeout = TimeSpan.FromSeconds(60) };

    /// <summary>The clock relative times are resolved against.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Reads an environment variable (API keys for <c>--server</c>); null when unset.</summary>
    public Func<string, string?> GetEnvironmentVariable { get; init; } = Environment.GetEnvironmentVariable;

    /// <summary>Where input is read from (<c>burnrate keys hash</c> reads the secret).</summary>
    public TextReader In { get; init; } = Console.In;

    /// <summary>Where results and help go.</summary>
    public TextWriter Out { get; init; } = Console.Out;

    /// <summary>Where errors go.</summary>
    public TextWriter Error { get; init; } = Console.Error;
}
