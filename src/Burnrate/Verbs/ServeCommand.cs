using System.CommandLine;
using Burnrate.Configuration;
using Burnrate.Pricing;
using Burnrate.Rating;
using Burnrate.Server;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Burnrate.Cli.Verbs;

/// <summary>
/// <c>burnrate serve</c>: the HTTP server over the data directory's ledger with a live rating pipeline: the cost
/// API, the burn rate, the events receiver (<c>POST /api/v1/events</c>) and health. Every
/// <see cref="RatingInterval"/> on the injected clock it rates the minutes that have closed into the ledger; on
/// shutdown it rates what is closed once more. The remote write and OTLP receivers join this verb with the ingest work.
/// </summary>
internal static partial class ServeCommand
{
    /// <summary>How often closed minutes are rated and written.</summary>
    public static readonly TimeSpan RatingInterval = TimeSpan.FromSeconds(5);

    public static Command Create(CliServices services)
    {
        var listen = new Option<string>("--listen")
        {
            Description = "Address to listen on; loopback only until API keys are configured (port 0 picks a free one)",
            HelpName = "ADDR",
            DefaultValueFactory = _ => "127.0.0.1:9840",
        };
        var command = new Command("serve", "Serve the ledger and rate live input: POST /api/v1/events, GET /api/v1/costs, /api/v1/burn, /healthz (remote write and OTLP receivers arrive with the ingest work)") { listen };
        BurnrateCli.SetGuardedAction(command, services, async (parse, cancellationToken) =>
        {
            var dataDirectory = BurnrateCli.GetLedgerLocation(parse); // also validates the config file
            var config = LoadConfig(BurnrateCli.GetConfigFile(parse));
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(CliServices.LedgerPath(dataDirectory)))!);
            var logger = new StderrLogger(services.Error);
            var (book, rateCard) = PricingSetup.Load(config, logger);
            var ratingOptions = config.ToRatingOptions();
            await using var store = await services.OpenStore(dataDirectory, cancellationToken).ConfigureAwait(false);
            var engine = new RatingEngine(book, rateCard, config.ToAttributionRules(), ratingOptions);
            using var pipeline = new CostPipeline(engine, store, ratingOptions, logger);
            await using var app = Build(parse.GetValue(listen)!, store, services.Time, pipeline);
            try
            {
                await app.StartAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (IOException e)
            {
                throw new CliUsageException($"--listen: cannot listen on {parse.GetValue(listen)}: {e.Message}");
            }
            // Started before the banner, so its first timer is armed on the clock before anyone can send an event.
            var rating = RateLoopAsync(pipeline, services.Time, logger, cancellationToken);
            await services.Out.WriteLineAsync($"burnrate serving {string.Join(", ", app.Urls)} (ledger {Path.GetFullPath(dataDirectory)}); Ctrl+C stops").ConfigureAwait(false);
            await rating.ConfigureAwait(false);
            await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
            // What closed since the last tick (and rows a failed write left behind) reach the ledger before exit.
            await RateOnceAsync(pipeline, services.Time, logger, CancellationToken.None).ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>Rates closed minutes every <see cref="RatingInterval"/> until cancelled.</summary>
    private static async Task RateLoopAsync(CostPipeline pipeline, TimeProvider time, ILogger logger, CancellationToken cancellationToken)
    {
        while (true)
        {
            try
            {
                await Task.Delay(RatingInterval, time, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            await RateOnceAsync(pipeline, time, logger, cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task RateOnceAsync(CostPipeline pipeline, TimeProvider time, ILogger logger, CancellationToken cancellationToken)
    {
        try
        {
            await pipeline.RateClosedMinutesAsync(time.GetUtcNow(), cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
#pragma warning disable CA1031 // A store outage must not stop the server: the pipeline keeps the rows and retries next tick.
        catch (Exception e)
#pragma warning restore CA1031
        {
            LogRatingFailed(logger, pipeline.PendingRows, e.Message);
        }
    }

    private static BurnrateConfig LoadConfig(string? path)
    {
        try
        {
            return BurnrateConfig.Load(path);
        }
        catch (ConfigException e)
        {
            throw new CliUsageException(e.Message);
        }
    }

    private static Microsoft.AspNetCore.Builder.WebApplication Build(string listen, Storage.ICostStore store, TimeProvider time, CostPipeline pipeline)
    {
        try
        {
            return BurnrateServer.Build(new BurnrateServerOptions
            {
                Listen = listen,
                Store = store,
                Time = time,
                ConfigureServices = s => s.AddSingleton(pipeline),
            });
        }
        catch (ArgumentException e)
        {
            throw new CliUsageException("--listen: " + e.Message);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "rating: writing the ledger failed; {PendingRows} rows kept for the next try: {Reason}")]
    private static partial void LogRatingFailed(ILogger logger, int pendingRows, string reason);
}
