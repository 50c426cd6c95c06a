using System.Collections.Frozen;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using Burnrate.Configuration;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Net.Http.Headers;

namespace Burnrate.Server;

/// <summary>
/// The dashboard: <c>GET /</c> answers the single page (<c>index.html</c>), <c>GET /ui/{file}</c> its scripts, styles
/// and the bundled uPlot. Every file is embedded in this assembly (resources named <c>dashboard/&lt;file&gt;</c>, see
/// the project file) and served from memory with its content type, an ETag and caching headers; nothing is read from
/// disk. The page fetches its numbers from the REST API (docs/dashboard.md).
/// </summary>
public static class DashboardEndpoints
{
    private const string ResourcePrefix = "dashboard/";
    private const string VersionPlaceholder = "{{v}}";

    private static Lazy<DashboardFiles> Files { get; } = new(DashboardFiles.Load);

    /// <summary>Maps <c>GET /</c> and <c>GET /ui/{file}</c>.</summary>
    public static IEndpointRouteBuilder MapDashboard(this IEndpointRouteBuilder app)
    {
        // The dashboard is not part of the REST API: its routes stay out of the OpenAPI document.
        // The page and its scripts are open: they hold no data, and the page asks for a key when the API answers 401.
        app.MapGet("/", (HttpContext context) => Serve(context, Files.Value.Index, immutable: false)).ExcludeFromDescription().RequireScope(ApiScopes.None);
        app.MapGet("/ui/{file}", (HttpContext context, string file) =>
        {
            if (!Files.Value.Assets.TryGetValue(file, out var asset))
                return Results.Problem(detail: $"the dashboard has no file '{file}'", statusCode: StatusCodes.Status404NotFound, title: "Not found");
            // Versioned URLs (?v=<content hash>, as index.html writes them) never change content: cache them for a year.
            var immutable = context.Request.Query["v"].ToString() == asset.Version;
            return Serve(context, asset, immutable);
        }).ExcludeFromDescription().RequireScope(ApiScopes.None);
        return app;
    }

    private static IResult Serve(HttpContext context, DashboardFile file, bool immutable)
    {
        var headers = context.Response.Headers;
        headers.ETag = file.ETag;
        headers.CacheControl = immutable ? "public, max-age=31536000, immutable" : "no-cache";
        headers.XContentTypeOptions = "nosniff";
        if (context.Request.Headers.IfNoneMatch.ToString() == file.ETag)
            return Results.StatusCode(StatusCodes.Status304NotModified);
        return Results.Bytes(file.Content, file.ContentType);
    }

    private sealed record DashboardFile(byte[] Content, string ContentType, string Version)
    {
        public string ETag => "\"" + Version + "\"";
    }

    private sealed record DashboardFiles(DashboardFile Index, FrozenDictionary<string, DashboardFile> Assets)
    {
        public static DashboardFiles Load()
        {
            var assembly = typeof(DashboardEndpoints).Assembly;
            var assets = new Dictionary<string, DashboardFile>(StringComparer.Ordinal);
            string? indexText = null;
            foreach (var name in assembly.GetManifestResourceNames().Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal)))
            {
                var fileName = name[ResourcePrefix.Length..];
                var content = Read(assembly, name);
                if (fileName == "index.html")
                    indexText = Encoding.UTF8.GetString(content);
                else
                    assets[fileName] = new DashboardFile(content, ContentTypeOf(fileName), Hash(content));
            }
            if (indexText is null)
                throw new InvalidOperationException("the dashboard's index.html is not embedded in Burnrate.Server (see Burnrate.Server.csproj)");
            // index.html names each asset as /ui/<file>?v={{v}}; the hash of the asset's content replaces the placeholder.
            var index = new StringBuilder(indexText);
            foreach (var (fileName, asset) in assets)
                index.Replace($"/ui/{fileName}?v={VersionPlaceholder}", $"/ui/{fileName}?v={asset.Version}");
            var indexBytes = Encoding.UTF8.GetBytes(index.ToString());
            return new DashboardFiles(new DashboardFile(indexBytes, "text/html; charset=utf-8", Hash(indexBytes)), assets.ToFrozenDictionary(StringComparer.Ordinal));
        }

        private static byte[] Read(Assembly assembly, string name)
        {
            using var stream = assembly.GetManifestResourceStream(name) ?? throw new InvalidOperationException($"embedded resource '{name}' cannot be read");
            using var memory = new MemoryStream();
            stream.CopyTo(memory);
            return memory.ToArray();
        }

        private static string Hash(byte[] content) => Convert.ToHexStringLower(SHA256.HashData(content))[..16];

        private static string ContentTypeOf(string fileName) => Path.GetExtension(fileName) switch
        {
            ".js" => "text/javascript; charset=utf-8",
            ".css" => "text/css; charset=utf-8",
            ".html" => "text/html; charset=utf-8",
            ".svg" => "image/svg+xml",
            ".png" => "image/png",
            ".ico" => "image/x-icon",
            _ => "application/octet-stream",
        };
    }
}
