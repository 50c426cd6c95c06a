using System.CommandLine;
using Burnrate.Server;

namespace Burnrate.Cli.Verbs;

/// <summary>
/// <c>burnrate serve</c>: the HTTP server over the data directory's ledger (the cost API and health). The receivers
/// (remote write, OTLP, events) are added to this verb as they are built; today it serves what is in the ledger.
/// </summary>
internal static class ServeCommand
{
    public static Command Create(CliServices services)
    {
        var listen = new Option<string>("--listen")
        {
            Description = "Address to listen on; loopback only until API keys are configured (port 0 picks a free one)",
            HelpName = "ADDR",
            DefaultValueFactory = _ => "127.0.0.1:9840",
        };
        var command = new Command("serve", "Serve the ledger over HTTP: GET /api/v1/costs, /healthz (ingest receivers arrive with the telemetry work)") { listen };
        BurnrateCli.SetGuardedAction(command, services, async (parse, cancellationToken) =>
        {
            var dataDirectory = BurnrateCli.GetLedgerLocation(parse); // also validates the config file
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(CliServices.LedgerPath(dataDirectory)))!);
            await using var store = await services.OpenStore(dataDirectory, cancellationToken).ConfigureAwait(false);
            await using var app = Build(parse.GetValue(listen)!, store, services.Time);
            try
            {
                await app.StartAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (IOException e)
            {
                throw new CliUsageException($"--listen: cannot listen on {parse.GetValue(listen)}: {e.Message}");
            }
            await services.Out.WriteLineAsync($"burnrate serving {string.Join(", ", app.Urls)} (ledger {Path.GetFullPath(dataDirectory)}); Ctrl+C stops").ConfigureAwait(false);
            try
            {
                await Task.Delay(Timeout.InfiniteTimeSpan, services.Time, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
            await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Microsoft.AspNetCore.Builder.WebApplication Build(string listen, Storage.ICostStore store, TimeProvider time)
    {
        try
        {
            return BurnrateServer.Build(new BurnrateServerOptions { Listen = listen, Store = store, Time = time });
        }
        catch (ArgumentException e)
        {
            throw new CliUsageException("--listen: " + e.Message);
        }
    }
}
