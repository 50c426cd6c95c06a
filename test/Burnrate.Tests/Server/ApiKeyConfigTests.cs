using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Burnrate.Cli.Verbs;
using Burnrate.Configuration;
using Burnrate.Server;
using Burnrate.Tests.Cli;
using Burnrate.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace Burnrate.Tests.Server;

/// <summary>The <c>auth</c> and <c>tls</c> config sections, the loopback rule, HTTPS, and the CLI's side of keys.</summary>
public sealed class ApiKeyConfigTests
{
    private static readonly string s_hash = ApiKey.HashHex("s3cret");

    [Theory]
    [InlineData("- { scopes: [read], sha256: HASH }", "auth.keys[0].name is required")]
    [InlineData("- { name: a, scopes: [read], sha256: HASH }\n    - { name: a, scopes: [ingest], sha256: HASH }", "auth.keys[1].name: 'a' is used by another key")]
    [InlineData("- { name: a, scopes: [write], sha256: HASH }", "auth.keys[0].scopes: 'write' is not one of ingest, read, admin")]
    [InlineData("- { name: a, scopes: [], sha256: HASH }", "auth.keys[0].scopes is empty")]
    [InlineData("- { name: a, scopes: [read] }", "auth.keys[0]: give sha256")]
    [InlineData("- { name: a, scopes: [read], sha256: HASH, env: K }", "auth.keys[0]: give sha256 or env, not both")]
    [InlineData("- { name: a, scopes: [read], sha256: abc }", "auth.keys[0].sha256 is not 64 hex digits")]
    [InlineData("- { name: a, scopes: [admin], team: llm, sha256: HASH }", "auth.keys[0].team: only a read key")]
    public void A_wrong_key_is_refused_naming_it(string keys, string message)
    {
        var yaml = "auth:\n  keys:\n    " + keys.Replace("HASH", s_hash, StringComparison.Ordinal);
        var e = Assert.Throws<ConfigException>(() => BurnrateConfig.Parse(yaml, "burnrate.yaml"));
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_key_from_the_environment_is_hashed_and_a_missing_variable_names_the_key_not_a_secret()
    {
        var config = BurnrateConfig.Parse("auth:\n  keys:\n    - { name: vision-read, scopes: [read], team: vision, env: BURNRATE_KEY_VISION }\n");
        var key = Assert.Single(config.ToApiKeys(name => name == "BURNRATE_KEY_VISION" ? "s3cret" : null));
        Assert.Equal(("vision-read", ApiScopes.Read, "vision"), (key.Name, key.Scopes, key.Team));
        Assert.Equal(s_hash, Convert.ToHexStringLower(key.Sha256.Span));
        var e = Assert.Throws<ArgumentException>(() => config.ToApiKeys(_ => null));
        Assert.Contains("auth.keys[0].env: the environment variable BURNRATE_KEY_VISION is not set", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Admin_holds_every_scope_and_the_others_only_their_own()
    {
        var admin = new ApiKey("ops", ApiScopes.Admin, null, new byte[32]);
        var ingest = new ApiKey("ci", ApiScopes.Ingest, null, new byte[32]);
        Assert.True(admin.Allows(ApiScopes.Read) && admin.Allows(ApiScopes.Ingest) && admin.Allows(ApiScopes.Admin));
        Assert.True(ingest.Allows(ApiScopes.Ingest));
        Assert.False(ingest.Allows(ApiScopes.Read));
        Assert.False(ingest.Allows(ApiScopes.Admin));
    }

    [Fact]
    public void A_non_loopback_address_is_refused_without_keys_and_served_with_them()
    {
        var store = new FakeCostStore();
        var e = Assert.Throws<ArgumentException>(() => BurnrateServer.Build(new BurnrateServerOptions { Listen = "0.0.0.0:0", Store = store }));
        Assert.Contains("refusing to listen on 0.0.0.0:0", e.Message, StringComparison.Ordinal);
        Assert.Contains("auth.keys", e.Message, StringComparison.Ordinal);
        var keys = new[] { new ApiKey("ops", ApiScopes.Admin, null, SHA256.HashData("k"u8)) };
        Assert.True(ListenAddress.TryParse("0.0.0.0:9840", allowNonLoopback: true, out var endpoint, out _));
        Assert.Equal(IPAddress.Any, endpoint.Address);
        // With keys, the server is built for the address (not started: the test must not open a port to the network).
        var app = BurnrateServer.Build(new BurnrateServerOptions { Listen = "0.0.0.0:0", Store = store, ApiKeys = keys });
        Assert.NotNull(app);
    }

    [Fact]
    public async Task Over_https_with_a_self_signed_certificate_from_the_config_a_request_with_a_key_works()
    {
        var ct = TestContext.Current.CancellationToken;
        var directory = Directory.CreateTempSubdirectory("burnrate-tls-").FullName;
        try
        {
            using var rsa = RSA.Create(2048);
            var request = new CertificateRequest("CN=localhost", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            var names = new SubjectAlternativeNameBuilder();
            names.AddIpAddress(IPAddress.Loopback);
            names.AddDnsName("localhost");
            request.CertificateExtensions.Add(names.Build());
            using var issued = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
            var certificatePath = Path.Combine(directory, "server.pem");
            var keyPath = Path.Combine(directory, "server.key");
            await File.WriteAllTextAsync(certificatePath, issued.ExportCertificatePem(), ct);
            await File.WriteAllTextAsync(keyPath, rsa.ExportPkcs8PrivateKeyPem(), ct);

            var config = BurnrateConfig.Parse($"""
                tls: {"{"} certificate: {certificatePath}, key: {keyPath} {"}"}
                auth:
                  keys:
                    - {"{"} name: ops, scopes: [admin], env: TLS_TEST_KEY {"}"}
                """);
            // The same loading as `burnrate serve`, with the environment faked.
            var (keys, certificate) = ServeCommand.LoadSecurity(config, name => name == "TLS_TEST_KEY" ? "tls-secret" : null);
            using var owned = certificate;
            await using var app = BurnrateServer.Build(new BurnrateServerOptions
            {
                Listen = "127.0.0.1:0",
                Store = new FakeCostStore(),
                Time = new FakeTimeProvider(CliHarness.Now),
                ApiKeys = keys,
                Certificate = certificate,
            });
            await app.StartAsync(ct);
            var url = app.Urls.Single();
            Assert.StartsWith("https://127.0.0.1:", url, StringComparison.Ordinal);

            using var handler = new HttpClientHandler
            {
                // Trust exactly the certificate made above.
                ServerCertificateCustomValidationCallback = (_, presented, _, _) => presented?.Thumbprint == issued.Thumbprint,
            };
            using var client = new HttpClient(handler) { BaseAddress = new Uri(url) };
            using var without = await client.GetAsync(new Uri("/api/v1/costs", UriKind.Relative), ct);
            Assert.Equal(HttpStatusCode.Unauthorized, without.StatusCode);
            using var withKey = new HttpRequestMessage(HttpMethod.Get, "/api/v1/costs");
            withKey.Headers.Authorization = new("Bearer", "tls-secret");
            using var response = await client.SendAsync(withKey, ct);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            await app.StopAsync(ct);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void Tls_needs_both_files_and_names_the_missing_one()
    {
        var e = Assert.Throws<ConfigException>(() => BurnrateConfig.Parse("tls: { certificate: /nonexistent/server.pem, key: /nonexistent/server.key }"));
        Assert.Contains("tls.certificate: '/nonexistent/server.pem' does not exist", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ConfigException>(() => BurnrateConfig.Parse("tls: { certificate: /nonexistent/server.pem }"));
        Assert.Contains("tls needs both certificate", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Keys_hash_prints_the_sha256_of_the_key_on_stdin_that_the_config_accepts()
    {
        using var cli = new CliHarness();
        cli.Input.Text = "s3cret\n";
        Assert.Equal(0, await cli.RunAsync("keys", "hash"));
        Assert.Equal(s_hash + Environment.NewLine, cli.Output.ToString());
        Assert.Matches("^[0-9a-f]{64}$", s_hash);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData("s3cret"u8)), s_hash);

        using var empty = new CliHarness();
        Assert.Equal(2, await empty.RunAsync("keys", "hash"));
        Assert.Contains("no key on stdin", empty.Errors.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Top_and_report_send_the_key_from_the_environment_and_explain_a_401()
    {
        var config = BurnrateConfig.Parse($"auth:\n  keys:\n    - {{ name: reader, scopes: [read], sha256: {s_hash} }}\n");
        await using var server = await ReplayedServer.StartAsync("baseline", TimeSpan.FromMinutes(10), config);

        using var without = new CliHarness();
        Assert.Equal(1, await without.RunAsync("top", "--server", server.Url.ToString(), "--once", "--format", "json"));
        Assert.Contains("401", without.Errors.ToString(), StringComparison.Ordinal);
        Assert.Contains("BURNRATE_API_KEY", without.Errors.ToString(), StringComparison.Ordinal);

        using var top = new CliHarness();
        top.Environment["BURNRATE_API_KEY"] = "s3cret";
        Assert.Equal(0, await top.RunAsync("top", "--server", server.Url.ToString(), "--once", "--format", "json"));
        Assert.Contains("total_usd_per_hour", top.Output.ToString(), StringComparison.Ordinal);

        using var report = new CliHarness();
        report.Environment["TEAM_KEY"] = "s3cret";
        Assert.Equal(0, await report.RunAsync("report", "--server", server.Url.ToString(), "--api-key-env", "TEAM_KEY", "--by", "team", "--from", "2026-03-02T08:00:00Z", "--to", "2026-03-02T09:00:00Z", "--format", "csv"));
        Assert.Contains("team", report.Output.ToString(), StringComparison.Ordinal);
    }
}
