using System.Text.RegularExpressions;
using Burnrate.Cli;

namespace Burnrate.Tests.Cli;

public sealed partial class ServeCommandTests : IDisposable
{
    private readonly string _data = Directory.CreateTempSubdirectory("burnrate-serve-").FullName;
    private readonly StringWriter _out = new();
    private readonly StringWriter _error = new();

    private CliServices Services() => Composition.CreateServices() is var real
        ? new CliServices { OpenStore = real.OpenStore, LoadPriceBook = real.LoadPriceBook, Out = TextWriter.Synchronized(_out), Error = _error }
        : throw new InvalidOperationException();

    [Fact]
    public async Task Serve_answers_the_cost_and_burn_apis_over_the_ledger_until_stopped()
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var run = BurnrateCli.InvokeAsync(Services(), ["serve", "--listen", "127.0.0.1:0", "--data", _data], stop.Token);
        string? url = null;
        for (var i = 0; i < 600 && url is null && !run.IsCompleted; i++)
        {
            url = UrlPattern().Match(_out.ToString()) is { Success: true } m ? m.Value : null;
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
        Assert.True(url is not null, "serve never said where it listens: " + _out + _error);

        using var http = new HttpClient();
        Assert.Equal("ok\n", await http.GetStringAsync(url + "/healthz", TestContext.Current.CancellationToken));
        var costs = await http.GetAsync(url + "/api/v1/costs?by=team", TestContext.Current.CancellationToken);
        Assert.Equal(System.Net.HttpStatusCode.OK, costs.StatusCode);
        var burn = await http.GetAsync(url + "/api/v1/burn", TestContext.Current.CancellationToken);
        Assert.Equal(System.Net.HttpStatusCode.OK, burn.StatusCode); // serve rates live input now

        await stop.CancelAsync();
        Assert.Equal(0, await run);
    }

    [Fact]
    public async Task Serve_refuses_a_non_loopback_address_without_api_keys()
    {
        var exit = await BurnrateCli.InvokeAsync(Services(), ["serve", "--listen", "0.0.0.0:9840", "--data", _data], TestContext.Current.CancellationToken);

        Assert.Equal(2, exit);
        Assert.Contains("loopback", _error.ToString(), StringComparison.OrdinalIgnoreCase);
    }

    [GeneratedRegex(@"http://127\.0\.0\.1:\d+")]
    private static partial Regex UrlPattern();

    public void Dispose()
    {
        _out.Dispose();
        _error.Dispose();
        try
        {
            Directory.Delete(_data, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
