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
        // LEAD: WIRE HERE. Replace with `() => BuiltInCatalog.Load().ToPriceBook()` once the catalog is merged.
        LoadPriceBook = static () => throw new NotSupportedException("the built-in price catalog is not wired into this build yet (Composition.CreateServices)"),
    };
}
