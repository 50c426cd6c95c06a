using Burnrate.Configuration;
using Burnrate.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Routing.Template;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Burnrate.Server;

/// <summary>
/// Builds the Burnrate HTTP server: Kestrel on a loopback address (any address once API keys exist; HTTPS with a certificate), the API key check, the REST API, the receivers (remote write, OTLP,
/// events), <c>/metrics</c>, <c>/healthz</c> and the OpenAPI document. Every error is RFC 7807 problem details.
/// </summary>
public static class BurnrateServer
{
    /// <summary>
    /// A configured, not yet started, web application. Start it with <c>StartAsync</c> or <c>RunAsync</c>; after
    /// start, <c>Urls</c> holds the bound address (useful with port 0).
    /// </summary>
    /// <exception cref="ArgumentException">The listen address is malformed, or not loopback while no API keys are configured.</exception>
    public static WebApplication Build(BurnrateServerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!ListenAddress.TryParse(options.Listen, allowNonLoopback: options.ApiKeys.Count > 0, out var endpoint, out var error))
            throw new ArgumentException(error, nameof(options));

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            ApplicationName = typeof(BurnrateServer).Assembly.GetName().Name,
            Args = [],
        });
        builder.Logging.SetMinimumLevel(options.MinimumLogLevel);
        var certificate = options.Certificate;
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(endpoint, listen =>
        {
            if (certificate is not null)
                listen.UseHttps(certificate);
        }));
        builder.Services.AddSingleton<ICostStore>(options.Store);
        builder.Services.AddSingleton(options.Time);
        builder.Services.AddProblemDetails();
        options.ConfigureServices?.Invoke(builder.Services);

        var app = builder.Build();
        app.UseExceptionHandler();
        // Errors answered with an empty body (a 404 outside /api, a 405, a 400 from binding) become problem details too.
        app.UseStatusCodePages();
        // Routing first, so the key check knows the endpoint and the scope it needs (docs/security.md).
        app.UseRouting();
        app.UseApiKeys(options.ApiKeys);
        app.MapHealth();
        app.MapCostApi();
        app.MapBurnApi();
        app.MapIngestApi();
        app.MapSelfMetrics();
        app.MapAlertsApi();
        app.MapWorkloadApi();
        app.MapFleetApi();
        app.MapPriceApi();
        app.MapPriceFeedApi();
        app.MapFocusApi();
        app.MapConnectorApi();
        app.MapOpenApiDocument();
        app.MapDashboard();
        app.MapApiFallback();
        return app;
    }

    /// <summary>
    /// Maps a fallback for every <c>/api/...</c> path no endpoint serves: 404 problem details naming the path, or 405
    /// with <c>Allow</c> when the path exists for other methods. Not part of the OpenAPI document.
    /// </summary>
    public static IEndpointRouteBuilder MapApiFallback(this IEndpointRouteBuilder app)
    {
        var sources = app.DataSources;
        app.MapFallback("/api/{**rest}", (HttpContext context) =>
        {
            var path = context.Request.Path;
            var allowed = new SortedSet<string>(StringComparer.Ordinal);
            foreach (var endpoint in sources.SelectMany(s => s.Endpoints).OfType<RouteEndpoint>())
            {
                if (endpoint.Metadata.GetMetadata<IExcludeFromDescriptionMetadata>() is { ExcludeFromDescription: true })
                    continue;
                var methods = endpoint.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods;
                if (methods is null || methods.Count == 0)
                    continue;
                var matcher = new TemplateMatcher(new RouteTemplate(endpoint.RoutePattern), new RouteValueDictionary());
                if (matcher.TryMatch(path, new RouteValueDictionary()))
                    allowed.UnionWith(methods);
            }
            if (allowed.Count > 0)
            {
                context.Response.Headers.Allow = string.Join(", ", allowed);
                return Results.Problem(detail: $"{context.Request.Method} is not allowed on {path}; allowed: {string.Join(", ", allowed)}",
                    statusCode: StatusCodes.Status405MethodNotAllowed, title: "Method not allowed");
            }
            return Results.Problem(detail: $"no API endpoint at {path} (the API is described at /openapi/v1.json)",
                statusCode: StatusCodes.Status404NotFound, title: "Not found");
        }).ExcludeFromDescription().RequireScope(ApiScopes.None); // says only what the open OpenAPI document says
        return app;
    }

    /// <summary>Maps <c>GET /healthz</c>, answering <c>ok</c> while the process serves requests.</summary>
    public static IEndpointRouteBuilder MapHealth(this IEndpointRouteBuilder app)
    {
        app.MapGet("/healthz", () => Results.Text("ok\n", "text/plain")).RequireScope(ApiScopes.None);
        return app;
    }
}
