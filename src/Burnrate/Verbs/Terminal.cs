using Spectre.Console;

namespace Burnrate.Cli.Verbs;

/// <summary>Spectre.Console over a <see cref="TextWriter"/>: colours only on a real terminal, wide when redirected.</summary>
internal static class Terminal
{
    public static IAnsiConsole Create(TextWriter writer)
    {
        var interactive = ReferenceEquals(writer, Console.Out) && !Console.IsOutputRedirected;
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(writer),
            Ansi = interactive ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = interactive ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        });
        if (!interactive)
            console.Profile.Width = 240; // a pipe or file has no width; do not wrap columns at 80
        return console;
    }
}
