using Burnrate.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Burnrate.Server;

/// <summary>Builds the Burnrate HTTP server: Kestrel on a loopback address, the REST API, the receivers (remote write, OTLP, events), <c>/metrics</c> and <c>/healthz</c>.</summary>
public static class BurnrateServer
{
    /// <summary>
    /// A configured, not yet started, web application. Start it with <c>StartAsync</c> or <c>RunAsync</c>; after
    /// start, <c>Urls</c> holds the bound address (useful with port 0).
    /// </summary>
    /// <exception cref="ArgumentException">The listen address is malformed or not loopback.</exception>
    public static WebApplication Build(BurnrateServerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!ListenAddress.TryParse(options.Listen, out var endpoint, out var error))
            throw new ArgumentException(error, nameof(options));

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            ApplicationName = typeof(BurnrateServer).Assembly.GetName().Name,
            Args = [],
        });
        builder.Logging.SetMinimumLevel(options.MinimumLogLevel);
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(endpoint));
        builder.Services.AddSingleton<ICostStore>(options.Store);
        builder.Services.AddSingleton(options.Time);
        builder.Services.AddProblemDetails();
        options.ConfigureServices?.Invoke(builder.Services);

        var app = builder.Build();
        app.UseExceptionHandler();
        app.MapHealth();
        app.MapCostApi();
        app.MapBurnApi();
        app.MapIngestApi();
        app.MapSelfMetrics();
        app.MapAlertsApi();
        app.MapDashboard();
        return app;
    }

    /// <summary>Maps <c>GET /healthz</c>, answering <c>ok</c> while the process serves requests.</summary>
    public static IEndpointRouteBuilder MapHealth(this IEndpointRouteBuilder app)
    {
        app.MapGet("/healthz", () => Results.Text("ok\n", "text/plain"));
        return app;
    }
}
