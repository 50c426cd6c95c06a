using System.Collections.Concurrent;
using System.Text;
using System.Text.Json.Nodes;
using System.Xml.Linq;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Burnrate.Tests.Support;

/// <summary>What the local price API answers to one request.</summary>
internal sealed record PriceApiAnswer(int Status, string Body, string ContentType = "application/json");

/// <summary>One request the local price API received.</summary>
internal sealed record PriceApiRequest(string Method, string Path, string Query, string Body);

/// <summary>
/// A local HTTP server on 127.0.0.1:0 standing in for a cloud price API: each request is answered by
/// <see cref="Answer"/>, which a test swaps to change prices or to fail. Requests are recorded.
/// </summary>
internal sealed class PriceApiServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private PriceApiServer(WebApplication app)
    {
        _app = app;
        Url = new Uri(app.Urls.Single());
    }

    /// <summary>The server's base URL (<c>http://127.0.0.1:PORT/</c>).</summary>
    public Uri Url { get; }

    /// <summary>Answers each request; a test swaps it at will. Returning null makes the request hang until the client gives up.</summary>
    public Func<PriceApiRequest, PriceApiAnswer?> Answer { get; set; } = _ => new PriceApiAnswer(404, "{}");

    public ConcurrentQueue<PriceApiRequest> Requests { get; } = new();

    public static async Task<PriceApiServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        PriceApiServer? server = null;
        app.Run(async context =>
        {
            using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
            var body = await reader.ReadToEndAsync(context.RequestAborted);
            var request = new PriceApiRequest(context.Request.Method, context.Request.Path.Value ?? "/", Uri.UnescapeDataString(context.Request.QueryString.Value ?? ""), body);
            server!.Requests.Enqueue(request);
            var answer = server.Answer(request);
            if (answer is null)
            {
                try
                {
                    await Task.Delay(Timeout.Infinite, context.RequestAborted);
                }
                catch (OperationCanceledException)
                {
                }
                return;
            }
            context.Response.StatusCode = answer.Status;
            context.Response.ContentType = answer.ContentType;
            await context.Response.WriteAsync(answer.Body, context.RequestAborted);
        });
        await app.StartAsync(TestContext.Current.CancellationToken);
        server = new PriceApiServer(app);
        return server;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync(CancellationToken.None);
        await _app.DisposeAsync();
    }
}

/// <summary>
/// The real response files under <c>../shared/data/spot</c>, and the EC2 Query-protocol XML of a
/// <c>DescribeSpotPriceHistory</c> answer, written with the element names of botocore's shapes for the operation.
/// </summary>
internal static class SpotTestData
{
    /// <summary><c>../shared/data/spot</c>; missing: fails under <c>CI=true</c>, else the test is skipped with the reason.</summary>
    public static string Dir()
    {
        var dir = Path.GetFullPath(Path.Combine(PricingTestPaths.RepoRoot(), "..", "shared", "data", "spot"));
        if (Directory.Exists(dir))
            return dir;
        var reason = $"spot price response files not found at {dir}";
        if (string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase))
            Assert.Fail(reason);
        Assert.Skip(reason);
        return dir;
    }

    public static string Read(string relative) => File.ReadAllText(Path.Combine(Dir(), relative));

    /// <summary>The <c>SpotPriceHistory</c> items of botocore's DescribeSpotPriceHistory example output, as JSON objects.</summary>
    public static List<JsonObject> AwsExampleItems()
    {
        var examples = JsonNode.Parse(Read("aws/examples-1.json"))!;
        var output = examples["examples"]!["DescribeSpotPriceHistory"]![0]!["output"]!;
        return [.. output["SpotPriceHistory"]!.AsArray().Select(i => i!.DeepClone().AsObject())];
    }

    /// <summary>
    /// The XML body EC2 answers DescribeSpotPriceHistory with: the result members and the SpotPrice members under the
    /// <c>locationName</c>s the shapes extract gives (<c>spotPriceHistorySet</c>, <c>item</c>, <c>spotPrice</c>, ...).
    /// </summary>
    public static string Ec2Xml(IEnumerable<JsonObject> items, string? nextToken = null)
    {
        var shapes = JsonNode.Parse(Read("aws/DescribeSpotPriceHistory.shapes-extract.json"))!["shapes"]!;
        var result = shapes["DescribeSpotPriceHistoryResult"]!["members"]!;
        var list = shapes["SpotPriceHistoryList"]!["member"]!;
        var spot = shapes["SpotPrice"]!["members"]!.AsObject();
        XNamespace ns = "http://ec2.amazonaws.com/doc/2016-11-15/";
        var set = new XElement(ns + (string)result["SpotPriceHistory"]!["locationName"]!);
        foreach (var item in items)
        {
            var element = new XElement(ns + (string)list["locationName"]!);
            foreach (var (member, shape) in spot)
            {
                if (item[member] is { } value)
                    element.Add(new XElement(ns + (string)shape!["locationName"]!, value.ToString()));
            }
            set.Add(element);
        }
        var root = new XElement(ns + "DescribeSpotPriceHistoryResponse",
            new XElement(ns + "requestId", "59dbff89-35bd-4eac-99ed-be587EXAMPLE"),
            set,
            new XElement(ns + (string)result["NextToken"]!["locationName"]!, nextToken ?? ""));
        return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + root.ToString(SaveOptions.DisableFormatting);
    }

    /// <summary>One SpotPriceHistory item shaped like the example's.</summary>
    public static JsonObject AwsItem(string zone, string type, string product, string price, DateTimeOffset timestamp) => new()
    {
        ["AvailabilityZone"] = zone,
        ["InstanceType"] = type,
        ["ProductDescription"] = product,
        ["SpotPrice"] = price,
        ["Timestamp"] = timestamp.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture),
    };
}
