using System.Security.Cryptography.X509Certificates;
using Burnrate.Configuration;
using Burnrate.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Burnrate.Server;

/// <summary>What <see cref="BurnrateServer.Build"/> needs: where to listen and the services the endpoints use.</summary>
public sealed class BurnrateServerOptions
{
    /// <summary>The default listen address: loopback only, port 9840.</summary>
    public const string DefaultListen = "127.0.0.1:9840";

    /// <summary>
    /// <c>HOST:PORT</c> to listen on (<c>127.0.0.1:9840</c>, <c>[::1]:9840</c>, <c>localhost:0</c>). Only loopback
    /// addresses are accepted unless <see cref="ApiKeys"/> has keys: without keys anyone who reaches the port would see everything.
    /// </summary>
    public string Listen { get; init; } = DefaultListen;

    /// <summary>The API keys (config <c>auth.keys</c>); empty: no key is asked for, and only loopback addresses are served.</summary>
    public IReadOnlyList<ApiKey> ApiKeys { get; init; } = [];

    /// <summary>The certificate (with its private key) to serve HTTPS with (config <c>tls</c>); null serves plain HTTP.</summary>
    public X509Certificate2? Certificate { get; init; }

    /// <summary>The ledger the API reads. The server does not dispose it: its owner does.</summary>
    public required ICostStore Store { get; init; }

    /// <summary>The clock that relative times (<c>-7d</c>, <c>now</c>) are resolved against.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>The least severe log level written; the host's own chatter is hidden by default.</summary>
    public LogLevel MinimumLogLevel { get; init; } = LogLevel.Warning;

    /// <summary>Extra registrations (receivers, rating engine, alert engine) added after the built-in ones.</summary>
    public Action<IServiceCollection>? ConfigureServices { get; init; }
}
