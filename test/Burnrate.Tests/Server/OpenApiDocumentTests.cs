using System.Text.Json;
using System.Text.Json.Nodes;
using Burnrate.Server;
using Burnrate.Storage.DuckDb;
using Burnrate.Tests.Support;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Routing.Patterns;

namespace Burnrate.Tests.Server;

/// <summary>The OpenAPI document covers every route the server maps and changes only on purpose (approval snapshot).</summary>
public sealed class OpenApiDocumentTests
{
    private static string ApprovedPath => Path.Combine(PricingTestPaths.RepoRoot(), "test", "Burnrate.Tests", "Approvals", "openapi.v1.json");

    [Fact]
    public async Task Every_route_the_server_maps_is_in_the_openapi_document_with_its_methods()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var store = await DuckDbCostStore.OpenAsync(":memory:", ct: ct);
        await using var app = BurnrateServer.Build(new BurnrateServerOptions { Listen = "127.0.0.1:0", Store = store });
        var paths = OpenApiDocument.Build()["paths"]!.AsObject();

        var routes = ((IEndpointRouteBuilder)app).DataSources.SelectMany(s => s.Endpoints).OfType<RouteEndpoint>()
            .Where(e => e.Metadata.GetMetadata<IExcludeFromDescriptionMetadata>() is not { ExcludeFromDescription: true })
            .ToList();
        Assert.True(routes.Count >= 14, $"only {routes.Count} routes found");
        var missing = new List<string>();
        foreach (var route in routes)
        {
            var path = DocumentPath(route.RoutePattern);
            foreach (var method in route.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods ?? ["(any)"])
            {
                if (paths[path]?[method.ToLowerInvariant()] is null)
                    missing.Add($"{method} {path}");
            }
        }
        Assert.True(missing.Count == 0, "mapped but not in the OpenAPI document (add them to OpenApiDocument.cs): " + string.Join(", ", missing));

        // And the other way: the document lists nothing the server does not serve.
        var mapped = routes.Select(r => DocumentPath(r.RoutePattern)).ToHashSet(StringComparer.Ordinal);
        var extra = paths.Select(p => p.Key).Where(p => !mapped.Contains(p)).ToList();
        Assert.True(extra.Count == 0, "in the OpenAPI document but not mapped: " + string.Join(", ", extra));
    }

    [Fact]
    public void The_openapi_document_matches_the_approved_snapshot()
    {
        var received = OpenApiDocument.Text;
        var approvedPath = ApprovedPath;
        var receivedPath = Path.ChangeExtension(approvedPath, ".received.json");
        var approved = File.Exists(approvedPath) ? File.ReadAllText(approvedPath).ReplaceLineEndings("\n") : null;
        if (approved == received)
        {
            File.Delete(receivedPath);
            return;
        }
        File.WriteAllText(receivedPath, received);
        Assert.Fail($"The OpenAPI document differs from the approved snapshot {approvedPath}. The new document is in {receivedPath}; "
            + $"review the difference (diff {approvedPath} {receivedPath}) and, if it is intended, accept it: cp {receivedPath} {approvedPath}");
    }

    [Fact]
    public async Task The_served_document_is_the_built_one_and_is_valid_json_with_schemas_for_every_reference()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var store = await DuckDbCostStore.OpenAsync(":memory:", ct: ct);
        await using var app = BurnrateServer.Build(new BurnrateServerOptions { Listen = "127.0.0.1:0", Store = store });
        await app.StartAsync(ct);
        using var http = new HttpClient();
        var served = await http.GetStringAsync(app.Urls.First() + OpenApiDocument.Path, ct);
        Assert.Equal(OpenApiDocument.Text, served);
        Assert.Equal(OpenApiDocument.Text, OpenApiDocument.Build().ToJsonString(OpenApiDocument.WriteOptions) + "\n");

        var document = JsonNode.Parse(served)!;
        var schemas = document["components"]!["schemas"]!.AsObject();
        var references = new List<string>();
        Collect(document, references);
        Assert.NotEmpty(references);
        Assert.All(references, r => Assert.True(schemas.ContainsKey(r["#/components/schemas/".Length..]), $"dangling $ref {r}"));
        await app.StopAsync(ct);
    }

    private static void Collect(JsonNode? node, List<string> references)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var (key, value) in o)
                {
                    if (key == "$ref")
                        references.Add(value!.GetValue<string>());
                    else
                        Collect(value, references);
                }
                break;
            case JsonArray a:
                foreach (var item in a)
                    Collect(item, references);
                break;
        }
    }

    /// <summary>The route as the document names it: <c>{**id}</c> and <c>{*id}</c> become <c>{id}</c>.</summary>
    private static string DocumentPath(RoutePattern pattern) =>
        "/" + string.Join("/", pattern.PathSegments.Select(s => string.Concat(s.Parts.Select(p => p switch
        {
            RoutePatternLiteralPart l => l.Content,
            RoutePatternParameterPart parameter => "{" + parameter.Name + "}",
            RoutePatternSeparatorPart sep => sep.Content,
            _ => "",
        }))));
}
