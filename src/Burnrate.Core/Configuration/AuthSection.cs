using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Burnrate.Configuration;

/// <summary>What an API key may do (config <c>auth.keys[].scopes</c>); docs/security.md.</summary>
[Flags]
public enum ApiScopes
{
    /// <summary>Nothing: only the open endpoints.</summary>
    None = 0,

    /// <summary>Send telemetry and events: remote write, OTLP, <c>/api/v1/events</c>.</summary>
    Ingest = 1,

    /// <summary>Read the API, the dashboard's data and <c>/metrics</c> (a team-scoped key reads its team only).</summary>
    Read = 2,

    /// <summary>Everything, including the endpoints for operators (<c>/api/v1/alerts/delivery</c>).</summary>
    Admin = 4,
}

/// <summary>
/// One API key as the server holds it: a name for logs, what it may do, the team a read key is restricted to, and the
/// SHA-256 of the secret. The secret itself is never kept.
/// </summary>
/// <param name="Name">The name logs and messages use instead of the secret.</param>
/// <param name="Scopes">What the key may do.</param>
/// <param name="Team">The only team this key sees, or null for every team.</param>
/// <param name="Sha256">The SHA-256 of the secret (32 bytes).</param>
public sealed record ApiKey(string Name, ApiScopes Scopes, string? Team, ReadOnlyMemory<byte> Sha256)
{
    /// <summary>Whether the key holds <paramref name="scope"/>; admin holds every scope.</summary>
    public bool Allows(ApiScopes scope) => scope == ApiScopes.None || (Scopes & (scope | ApiScopes.Admin)) != 0;

    /// <summary>The SHA-256 of a secret as lower-case hex: what <c>auth.keys[].sha256</c> holds.</summary>
    public static string HashHex(string secret) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));
}

/// <summary>Config section <c>auth:</c>: the API keys. Without keys the server needs none and serves loopback only.</summary>
public sealed class AuthSection
{
    /// <summary>The keys; each names its scopes and either the SHA-256 of its secret or the variable holding the secret.</summary>
    public List<ApiKeySection> Keys { get; set; } = [];
}

/// <summary>One item of <c>auth.keys</c>.</summary>
public sealed class ApiKeySection
{
    /// <summary>The key's name, shown in logs instead of the secret; unique.</summary>
    public string? Name { get; set; }

    /// <summary>Any of <c>ingest</c>, <c>read</c>, <c>admin</c>.</summary>
    public List<string> Scopes { get; set; } = [];

    /// <summary>Restricts a read key to this team's workloads and costs.</summary>
    public string? Team { get; set; }

    /// <summary>The SHA-256 of the secret, 64 hex digits (<c>burnrate keys hash</c> prints it).</summary>
    public string? Sha256 { get; set; }

    /// <summary>The environment variable holding the secret itself.</summary>
    public string? Env { get; set; }
}

/// <summary>Config section <c>tls:</c>: HTTPS through Kestrel with a PEM certificate and its private key.</summary>
public sealed class TlsSection
{
    /// <summary>The PEM certificate (chain) file.</summary>
    public string? Certificate { get; set; }

    /// <summary>The PEM private key file (unencrypted PKCS#8, PKCS#1 or SEC1).</summary>
    public string? Key { get; set; }
}

/// <summary>Turns the <c>auth</c> section into <see cref="ApiKey"/>s, naming the key at fault on every error.</summary>
public static class ApiKeys
{
    /// <summary>
    /// The keys the section describes. Secrets named by <c>env</c> are read from <paramref name="environment"/> (the
    /// process environment by default) and hashed at once.
    /// </summary>
    /// <exception cref="ArgumentException">A key is incomplete, ambiguous or repeated; the message names it.</exception>
    public static IReadOnlyList<ApiKey> From(AuthSection section, Func<string, string?>? environment = null)
    {
        ArgumentNullException.ThrowIfNull(section);
        environment ??= Environment.GetEnvironmentVariable;
        var keys = new List<ApiKey>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < section.Keys.Count; i++)
        {
            var item = section.Keys[i];
            var where = string.Create(CultureInfo.InvariantCulture, $"auth.keys[{i}]");
            if (string.IsNullOrWhiteSpace(item.Name))
                throw new ArgumentException($"{where}.name is required (logs show it instead of the secret)");
            if (!names.Add(item.Name))
                throw new ArgumentException($"{where}.name: '{item.Name}' is used by another key");
            var scopes = ApiScopes.None;
            if (item.Scopes.Count == 0)
                throw new ArgumentException($"{where}.scopes is empty: list any of ingest, read, admin");
            foreach (var scope in item.Scopes)
            {
                scopes |= scope switch
                {
                    "ingest" => ApiScopes.Ingest,
                    "read" => ApiScopes.Read,
                    "admin" => ApiScopes.Admin,
                    _ => throw new ArgumentException($"{where}.scopes: '{scope}' is not one of ingest, read, admin"),
                };
            }
            if (item.Team is not null && (string.IsNullOrWhiteSpace(item.Team) || (scopes & ApiScopes.Admin) != 0 || (scopes & ApiScopes.Read) == 0))
                throw new ArgumentException($"{where}.team: only a read key (not admin) can be restricted to a team, and the team must not be empty");
            byte[] hash;
            if (item.Sha256 is not null && item.Env is not null)
                throw new ArgumentException($"{where}: give sha256 or env, not both");
            if (item.Sha256 is not null)
            {
                if (item.Sha256.Length != 64 || !item.Sha256.All(Uri.IsHexDigit))
                    throw new ArgumentException($"{where}.sha256 is not 64 hex digits (make one with: burnrate keys hash)");
                hash = Convert.FromHexString(item.Sha256);
            }
            else if (item.Env is not null)
            {
                // The message names the variable, never its value.
                var secret = environment(item.Env);
                if (string.IsNullOrEmpty(secret))
                    throw new ArgumentException($"{where}.env: the environment variable {item.Env} is not set or empty");
                hash = SHA256.HashData(Encoding.UTF8.GetBytes(secret));
            }
            else
                throw new ArgumentException($"{where}: give sha256 (the SHA-256 of the secret) or env (the variable holding it); the secret itself never goes in the file");
            keys.Add(new ApiKey(item.Name, scopes, item.Team, hash));
        }
        return keys;
    }
}
