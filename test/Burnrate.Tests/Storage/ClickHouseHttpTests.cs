using System.Net;
using Burnrate.Storage.ClickHouse;
using Microsoft.Extensions.Time.Testing;

namespace Burnrate.Tests.Storage;

/// <summary>How the ClickHouse client treats a server's error answers (no server: a handler answers).</summary>
public sealed class ClickHouseHttpTests
{
    private const string ConnectionLoss = "Code: 999, e.displayText() = Coordination::Exception: All connection tries failed while connecting to ZooKeeper. (Connection loss), e.what() = Coordination::Exception";

    private sealed class Scripted(params (HttpStatusCode Status, string Body)[] answers) : HttpMessageHandler
    {
        public int Requests { get; private set; }

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var (status, body) = answers[Math.Min(Requests, answers.Length - 1)];
            Requests++;
            return Task.FromResult(new HttpResponseMessage(status) { Content = new StringContent(body) });
        }
    }

    private static async Task<T> RunOnFakeTimeAsync<T>(FakeTimeProvider time, Func<Task<T>> action)
    {
        var task = action();
        while (!task.IsCompleted)
        {
            time.Advance(TimeSpan.FromMilliseconds(250));
            await Task.Delay(5, TestContext.Current.CancellationToken);
        }
        return await task;
    }

    [Fact]
    public async Task A_lost_zookeeper_session_is_waited_out_and_the_statement_sent_again()
    {
        using var handler = new Scripted((HttpStatusCode.InternalServerError, ConnectionLoss), (HttpStatusCode.InternalServerError, ConnectionLoss), (HttpStatusCode.OK, "1\n"));
        var time = new FakeTimeProvider();
        using var client = new ClickHouseHttp([new Uri("http://127.0.0.1:1/")], "db", null, null, TimeSpan.FromSeconds(5), handler, time);

        var rows = await RunOnFakeTimeAsync(time, () => client.QueryAsync("SELECT 1", TestContext.Current.CancellationToken));

        Assert.Equal("1", Assert.Single(rows)[0]);
        Assert.Equal(3, handler.Requests);
    }

    [Fact]
    public async Task A_zookeeper_that_stays_away_is_an_error_after_the_retries()
    {
        using var handler = new Scripted((HttpStatusCode.InternalServerError, ConnectionLoss));
        var time = new FakeTimeProvider();
        using var client = new ClickHouseHttp([new Uri("http://127.0.0.1:1/")], "db", null, null, TimeSpan.FromSeconds(5), handler, time);

        var error = await Assert.ThrowsAsync<ClickHouseException>(() => RunOnFakeTimeAsync(time, async () =>
        {
            await client.ExecuteAsync("CREATE TABLE t (x UInt8) ENGINE = Memory", TestContext.Current.CancellationToken);
            return 0;
        }));

        Assert.Equal(999, error.Code);
        Assert.Equal(6, handler.Requests); // the first try and five retries
    }

    [Fact]
    public async Task Any_other_error_is_reported_at_once()
    {
        using var handler = new Scripted((HttpStatusCode.BadRequest, "Code: 62, e.displayText() = DB::Exception: Syntax error"));
        using var client = new ClickHouseHttp([new Uri("http://127.0.0.1:1/")], "db", null, null, TimeSpan.FromSeconds(5), handler, new FakeTimeProvider());

        var error = await Assert.ThrowsAsync<ClickHouseException>(() => client.ExecuteAsync("SELEC 1", TestContext.Current.CancellationToken));

        Assert.Equal(62, error.Code);
        Assert.Equal(1, handler.Requests);
        Assert.Contains("Syntax error", error.Message, StringComparison.Ordinal);
    }
}
