using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Burnrate.Tests.Support;

/// <summary>
/// An HTTP receiver on 127.0.0.1 that records every POST (path and JSON body) and answers with the scripted status
/// codes in order, then 200.
/// </summary>
internal sealed class HookReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<int> _answers;

    private HookReceiver(WebApplication app, IEnumerable<int> answers)
    {
        _app = app;
        _answers = new(answers);
    }

    /// <summary>Requests received so far, in order.</summary>
    public ConcurrentQueue<(string Path, JsonElement Body)> Requests { get; } = new();

    public string Url => _app.Urls.First();

    public static async Task<HookReceiver> StartAsync(CancellationToken ct, params int[] answers)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var receiver = new HookReceiver(app, answers);
        app.MapPost("/{**path}", async (HttpContext context) =>
        {
            using var body = await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted);
            receiver.Requests.Enqueue((context.Request.Path.Value ?? "", body.RootElement.Clone()));
            return Results.StatusCode(receiver._answers.TryDequeue(out var code) ? code : 200);
        });
        await app.StartAsync(ct);
        return receiver;
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
