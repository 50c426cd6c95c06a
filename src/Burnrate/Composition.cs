using Burnrate.Configuration;
using Burnrate.Pricing;
using Burnrate.Storage;

namespace Burnrate.Cli;

/// <summary>Where the executable plugs the real store and price book into the CLI.</summary>
internal static class Composition
{
    public static CliServices CreateServices() => new()
    {
        // LEAD: WIRE HERE. Replace with `(dir, ct) => DuckDbCostStore.OpenAsync(Path.Combine(dir, CliServices.LedgerFileName))`
        // (or however the DuckDB store is opened) once the store is merged.
        OpenStore = static (_, _) => Task.FromException<ICostStore>(
            new NotSupportedException("the DuckDB store is not wired into this build yet (Composition.CreateServices)")),
        LoadPriceBook = static configPath => PricingSetup.Load(BurnrateConfig.Load(configPath)).Book,
    };
}
