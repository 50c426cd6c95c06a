using System.CommandLine;
using Burnrate.Configuration;

namespace Burnrate.Cli.Verbs;

/// <summary>
/// <c>burnrate keys hash</c>: prints the SHA-256 of an API key read from stdin, the value <c>auth.keys[].sha256</c> holds,
/// so the secret itself never goes in the config file (docs/security.md).
/// </summary>
internal static class KeysCommand
{
    public static Command Create(CliServices services)
    {
        var hash = new Command("hash",
            "Read an API key from stdin (one line; the newline is not part of it) and print its SHA-256 in hex, for auth.keys[].sha256 "
            + "in the config. Example: openssl rand -hex 32 | tee key.txt | burnrate keys hash");
        BurnrateCli.SetGuardedAction(hash, services, async (parse, cancellationToken) =>
        {
            var secret = (await services.In.ReadLineAsync(cancellationToken).ConfigureAwait(false))?.TrimEnd('\r');
            if (string.IsNullOrEmpty(secret))
                throw new CliUsageException("no key on stdin: pipe the key in, e.g. printf %s \"$KEY\" | burnrate keys hash");
            await services.Out.WriteLineAsync(ApiKey.HashHex(secret)).ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return new Command("keys", "API keys for the server's config (auth.keys; docs/security.md)") { hash };
    }
}
