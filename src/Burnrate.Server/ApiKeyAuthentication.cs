using System.Security.Cryptography;
using System.Text;
using Burnrate.Configuration;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Burnrate.Server;

/// <summary>Endpoint metadata: the scope a key needs to call the endpoint; <see cref="ApiScopes.None"/> leaves it open.</summary>
/// <param name="Scope">The scope needed.</param>
public sealed record RequiredScope(ApiScopes Scope);

/// <summary>
/// Who is calling: the API key's name, scopes and the team a team-scoped read key is restricted to. Set on every request by
/// the server's key check (<see cref="ApiKeyAuthentication"/>); handlers read it with <see cref="Of"/> to restrict what
/// they produce to <see cref="Team"/>.
/// </summary>
/// <param name="Name">The key's name (never the secret).</param>
/// <param name="Scopes">What the caller may do.</param>
/// <param name="Team">The only team the caller sees, or null for every team.</param>
public sealed record BurnratePrincipal(string Name, ApiScopes Scopes, string? Team)
{
    /// <summary>The caller when the server has no keys: loopback only, everything allowed.</summary>
    public static BurnratePrincipal Unrestricted { get; } = new("(no keys configured)", ApiScopes.Ingest | ApiScopes.Read | ApiScopes.Admin, null);

    /// <summary>A caller without a key on an open endpoint.</summary>
    public static BurnratePrincipal Anonymous { get; } = new("(anonymous)", ApiScopes.None, null);

    /// <summary>Whether the caller sees everything (admin, or a read key without a team): self-health series and every team.</summary>
    public bool SeesEverything => Team is null;

    /// <summary>Whether the caller may see what belongs to <paramref name="team"/>.</summary>
    public bool Sees(string? team) => Team is null || string.Equals(Team, team, StringComparison.Ordinal);

    /// <summary>
    /// 403 problem details when a team-scoped caller asks, by a <c>team</c> parameter or filter, for a team other than
    /// its own; null when the request may go on (docs/security.md).
    /// </summary>
    public IResult? RefuseOtherTeams(IEnumerable<string> asked)
    {
        ArgumentNullException.ThrowIfNull(asked);
        if (Team is null || asked.All(t => string.Equals(t, Team, StringComparison.Ordinal)))
            return null;
        return Results.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Outside the key's team",
            detail: $"the key '{Name}' sees team '{Team}' only; the request asks for another team");
    }

    /// <summary>The caller of this request; <see cref="Unrestricted"/> on an application that maps endpoints without the key check.</summary>
    public static BurnratePrincipal Of(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.Features.Get<BurnratePrincipal>() ?? Unrestricted;
    }
}

/// <summary>
/// The API key check: one middleware after routing. It reads the endpoint's <see cref="RequiredScope"/> (an endpoint without
/// one needs admin, so a new endpoint is never open by mistake), finds the key given as <c>Authorization: Bearer KEY</c> or
/// <c>X-Api-Key: KEY</c> by comparing SHA-256 hashes in constant time, and answers 401 (no or unknown key, with
/// <c>WWW-Authenticate: Bearer</c>) or 403 (the key lacks the scope) as problem details. Logs name the key, never the secret.
/// Without configured keys every request passes as <see cref="BurnratePrincipal.Unrestricted"/>.
/// </summary>
public static partial class ApiKeyAuthentication
{
    /// <summary>Marks an endpoint as needing <paramref name="scope"/> (<see cref="ApiScopes.None"/>: open to all).</summary>
    public static TBuilder RequireScope<TBuilder>(this TBuilder builder, ApiScopes scope) where TBuilder : IEndpointConventionBuilder
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.WithMetadata(new RequiredScope(scope));
        return builder;
    }

    /// <summary>The scope an endpoint needs: its <see cref="RequiredScope"/>, else admin.</summary>
    public static ApiScopes ScopeOf(Endpoint endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        return endpoint.Metadata.GetMetadata<RequiredScope>()?.Scope ?? ApiScopes.Admin;
    }

    /// <summary>Adds the key check; call after <c>UseRouting</c> so the endpoint is known.</summary>
    public static IApplicationBuilder UseApiKeys(this IApplicationBuilder app, IReadOnlyList<ApiKey> keys)
    {
        ArgumentNullException.ThrowIfNull(app);
        ArgumentNullException.ThrowIfNull(keys);
        var logger = app.ApplicationServices.GetRequiredService<ILoggerFactory>().CreateLogger("Burnrate.Server.Auth");
        var ring = keys.ToArray();
        return app.Use(async (context, next) =>
        {
            if (ring.Length == 0)
            {
                context.Features.Set(BurnratePrincipal.Unrestricted);
                await next(context).ConfigureAwait(false);
                return;
            }
            var endpoint = context.GetEndpoint();
            var required = endpoint is null ? ApiScopes.None : ScopeOf(endpoint);
            var presented = PresentedKey(context.Request);
            var key = presented is null ? null : Find(ring, presented);
            if (required == ApiScopes.None)
            {
                context.Features.Set(key is null ? BurnratePrincipal.Anonymous : new BurnratePrincipal(key.Name, key.Scopes, key.Team));
                await next(context).ConfigureAwait(false);
                return;
            }
            if (key is null)
            {
                if (logger.IsEnabled(LogLevel.Information))
                    LogRefused(logger, context.Request.Method, context.Request.Path.Value ?? "", presented is null ? "no key" : "an unknown key");
                context.Response.Headers.WWWAuthenticate = presented is null ? "Bearer realm=\"burnrate\"" : "Bearer realm=\"burnrate\", error=\"invalid_token\"";
                await Results.Problem(statusCode: StatusCodes.Status401Unauthorized, title: "API key required",
                    detail: presented is null
                        ? $"{context.Request.Path} needs an API key with the {Name(required)} scope: send Authorization: Bearer <key> (docs/security.md)"
                        : "the API key is not known to this server").ExecuteAsync(context).ConfigureAwait(false);
                return;
            }
            if (!key.Allows(required))
            {
                var scopeName = Name(required);
                if (logger.IsEnabled(LogLevel.Information))
                    LogForbidden(logger, key.Name, context.Request.Method, context.Request.Path.Value ?? "", scopeName);
                await Results.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Outside the key's scope",
                    detail: $"the key '{key.Name}' does not have the {Name(required)} scope that {context.Request.Method} {context.Request.Path} needs")
                    .ExecuteAsync(context).ConfigureAwait(false);
                return;
            }
            context.Features.Set(new BurnratePrincipal(key.Name, key.Scopes, key.Team));
            await next(context).ConfigureAwait(false);
        });
    }

    /// <summary>The secret sent as <c>Authorization: Bearer KEY</c> or <c>X-Api-Key: KEY</c>, or null.</summary>
    private static string? PresentedKey(HttpRequest request)
    {
        var authorization = request.Headers.Authorization.ToString();
        if (authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            var token = authorization["Bearer ".Length..].Trim();
            return token.Length == 0 ? null : token;
        }
        var header = request.Headers["X-Api-Key"].ToString().Trim();
        return header.Length == 0 ? null : header;
    }

    /// <summary>
    /// The key whose hash matches. Every key is compared, in constant time, whatever matched earlier: how long this takes
    /// says nothing about how much of a secret was right, or which key it resembled.
    /// </summary>
    private static ApiKey? Find(ApiKey[] ring, string presented)
    {
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(Encoding.UTF8.GetBytes(presented), hash);
        ApiKey? found = null;
        foreach (var key in ring)
        {
            if (CryptographicOperations.FixedTimeEquals(hash, key.Sha256.Span))
                found = key;
        }
        return found;
    }

    private static string Name(ApiScopes scope) => scope switch
    {
        ApiScopes.Ingest => "ingest",
        ApiScopes.Read => "read",
        _ => "admin",
    };

    [LoggerMessage(Level = LogLevel.Information, Message = "auth: {Method} {Path} refused: {What}")]
    private static partial void LogRefused(ILogger logger, string method, string path, string what);

    [LoggerMessage(Level = LogLevel.Information, Message = "auth: key '{KeyName}' refused for {Method} {Path}: it lacks the {Scope} scope")]
    private static partial void LogForbidden(ILogger logger, string keyName, string method, string path, string scope);
}
