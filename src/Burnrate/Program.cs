namespace Burnrate.Cli;

internal static class Program
{
    public static Task<int> Main(string[] args) => BurnrateCli.InvokeAsync(Composition.CreateServices(), args);
}
