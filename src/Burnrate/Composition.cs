using Burnrate.Configuration;
using Burnrate.Pricing;
using Burnrate.Storage;
using Burnrate.Storage.DuckDb;

namespace Burnrate.Cli;

/// <summary>Where the executable plugs the real store and price book into the CLI.</summary>
internal static class Composition
{
    public static CliServices CreateServices() => new()
    {
        OpenStore = static async (dir, ct) => await DuckDbCostStore.OpenAsync(CliServices.LedgerPath(dir), ct: ct).ConfigureAwait(false),
        LoadPriceBook = static configPath => PricingSetup.Load(BurnrateConfig.Load(configPath), new StderrLogger(Console.Error)).Book,
    };
}
