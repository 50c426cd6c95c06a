using System.CommandLine;
using System.CommandLine.Help;
using System.Runtime.CompilerServices;
using Burnrate.Cli;

namespace Burnrate.Tests.Cli;

/// <summary>
/// Approval snapshots of <c>burnrate --help</c> and <c>burnrate VERB --help</c> for every verb (and sub-verb): a change
/// to the command line shows up as a diff of a checked-in file under <c>test/Burnrate.Tests/Approvals/help/</c>.
/// </summary>
public sealed class HelpApprovalTests
{
    // Help wraps at the terminal's width; the snapshots are taken at a fixed one.
    private const int Width = 100;

    // The checked-in folder (where a received file is useful), or its copy beside the test assembly when the sources
    // are not where the compiler saw them.
    private static string ApprovalDirectory([CallerFilePath] string source = "")
    {
        var checkedIn = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(source) ?? "", "..", "Approvals", "help"));
        return Directory.Exists(checkedIn) ? checkedIn : Path.Combine(AppContext.BaseDirectory, "Approvals", "help");
    }

    /// <summary>Every command path: the root (empty) and each verb and sub-verb, e.g. "demo list".</summary>
    public static TheoryData<string> Commands()
    {
        var data = new TheoryData<string> { "" };
        using var cli = new CliHarness();
        void Walk(Command command, string prefix)
        {
            foreach (var sub in command.Subcommands)
            {
                var path = (prefix + " " + sub.Name).Trim();
                data.Add(path);
                Walk(sub, path);
            }
        }
        Walk(BurnrateCli.Build(cli.Services), "");
        return data;
    }

    [Fact]
    public void Every_verb_of_the_product_contract_has_a_help_snapshot()
    {
        var commands = Commands().Select(row => row.Data).ToList();
        foreach (var verb in new[] { "serve", "demo", "report", "prices", "agent", "top" })
            Assert.Contains(verb, commands);
        // A snapshot whose verb is gone is a stale file: delete it with the verb.
        var expected = commands.Select(FileName).ToHashSet(StringComparer.Ordinal);
        var stale = Directory.GetFiles(ApprovalDirectory(), "*.txt").Select(Path.GetFileName)
            .Where(f => !f!.EndsWith(".received.txt", StringComparison.Ordinal) && !expected.Contains(f!)).ToList();
        Assert.True(stale.Count == 0, "snapshots of no verb: " + string.Join(", ", stale));
    }

    [Theory]
    [MemberData(nameof(Commands))]
    public async Task Help_matches_its_approved_snapshot(string command)
    {
        using var cli = new CliHarness();
        var root = BurnrateCli.Build(cli.Services);
        ((HelpAction)root.Options.OfType<HelpOption>().Single().Action!).MaxWidth = Width;

        var args = command.Length == 0 ? new[] { "--help" } : [.. command.Split(' '), "--help"];
        Assert.Equal(0, await BurnrateCli.InvokeAsync(root, cli.Services, args, TestContext.Current.CancellationToken));

        var received = Normalize(cli.Output.ToString(), root.Name);
        var approved = Path.Combine(ApprovalDirectory(), FileName(command));
        var receivedPath = Path.ChangeExtension(approved, ".received.txt");
        var expected = File.Exists(approved) ? Normalize(await File.ReadAllTextAsync(approved, TestContext.Current.CancellationToken), root.Name) : null;
        if (received == expected)
        {
            File.Delete(receivedPath);
            return;
        }
        await File.WriteAllTextAsync(receivedPath, received, TestContext.Current.CancellationToken);
        Assert.Fail(
            $"`burnrate {command} --help` differs from its approved snapshot {approved}{(expected is null ? " (none yet)" : "")}.\n" +
            $"The output is in {receivedPath}. If the change is intended, accept it: mv '{receivedPath}' '{approved}'\n" +
            $"--- received ---\n{received}");
    }

    private static string FileName(string command) => (command.Length == 0 ? "burnrate" : "burnrate-" + command.Replace(' ', '-')) + ".txt";

    // The usage line names the executable (the test host here): always "burnrate". Line ends and trailing blanks do not count.
    private static string Normalize(string text, string executable)
    {
        var lines = text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n')
            .Select(l => l.TrimEnd())
            .Select(l => l.StartsWith("  " + executable, StringComparison.Ordinal) && executable != "burnrate" ? "  burnrate" + l[(2 + executable.Length)..] : l);
        return string.Join('\n', lines).TrimEnd('\n') + "\n";
    }
}
