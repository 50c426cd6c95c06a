using System.Net;
using System.Text.Json;
using Burnrate.Configuration;
using Burnrate.Server;
using Burnrate.Tests.Support;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Burnrate.Tests.Server;

/// <summary>
/// One server fed by the simulator (the baseline fleet: teams llm, ml-platform, speech, vision; plus S1) with an ingest,
/// a read, an admin and two team-scoped read keys, and a tiny per-team budget rule so every team has alerts.
/// </summary>
public sealed class KeyedFleetServer : IAsyncLifetime
{
    public const string TeamA = "llm";
    public const string TeamB = "vision";

    private ReplayedServer? _server;

    internal ReplayedServer Server => _server ?? throw new InvalidOperationException("not started");

    /// <summary>Secrets by caller; the config holds only their SHA-256.</summary>
    public IReadOnlyDictionary<string, string> Secrets { get; } = new Dictionary<string, string>
    {
        ["ingest"] = "ingest-" + Guid.NewGuid().ToString("N"),
        ["read"] = "read-" + Guid.NewGuid().ToString("N"),
        ["teamA"] = "team-a-" + Guid.NewGuid().ToString("N"),
        ["teamB"] = "team-b-" + Guid.NewGuid().ToString("N"),
        ["admin"] = "admin-" + Guid.NewGuid().ToString("N"),
    };

    public async ValueTask InitializeAsync()
    {
        var config = BurnrateConfig.Parse($"""
            rules:
              - name: tiny-team-budget
                kind: budget
                scope: team
                amount_usd: 1
                period: day
            auth:
              keys:
                - {"{"} name: ci-ingest, scopes: [ingest], sha256: {ApiKey.HashHex(Secrets["ingest"])} {"}"}
                - {"{"} name: dashboards, scopes: [read], sha256: {ApiKey.HashHex(Secrets["read"])} {"}"}
                - {"{"} name: llm-read, scopes: [read], team: {TeamA}, sha256: {ApiKey.HashHex(Secrets["teamA"])} {"}"}
                - {"{"} name: vision-read, scopes: [read], team: {TeamB}, sha256: {ApiKey.HashHex(Secrets["teamB"])} {"}"}
                - {"{"} name: ops, scopes: [admin], sha256: {ApiKey.HashHex(Secrets["admin"])} {"}"}
            """);
        _server = await ReplayedServer.StartAsync("baseline+s1", TimeSpan.FromMinutes(40), config);
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
            await _server.DisposeAsync();
    }

    /// <summary>GET with the key of <paramref name="caller"/> (null: no key).</summary>
    public async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, string? secret)
    {
        using var client = Server.Client();
        using var request = new HttpRequestMessage(method, path);
        if (secret is not null)
            request.Headers.Authorization = new("Bearer", secret);
        if (method == HttpMethod.Post)
            request.Content = new StringContent("[]", System.Text.Encoding.UTF8, "application/json");
        return await client.SendAsync(request, TestContext.Current.CancellationToken);
    }

    public async Task<JsonDocument> GetJsonAsync(string path, string caller)
    {
        using var response = await SendAsync(HttpMethod.Get, path, Secrets[caller]);
        Assert.True(response.IsSuccessStatusCode, $"GET {path} as {caller}: {(int)response.StatusCode}");
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
    }
}

/// <summary>
/// Every endpoint the server maps × every kind of caller → the status it gets; and what team-scoped keys see.
/// </summary>
public sealed class AuthorizationMatrixTests(KeyedFleetServer fleet) : IClassFixture<KeyedFleetServer>
{
    /// <summary>What an endpoint needs. A new endpoint fails <see cref="Every_endpoint_answers_every_caller_as_its_scope_says"/> until it is listed here.</summary>
    private enum Access { Open, Ingest, Read, Admin, AdminUpload }

    private static readonly Dictionary<string, Access> s_classified = new(StringComparer.Ordinal)
    {
        ["GET /healthz"] = Access.Open,
        ["GET /openapi/v1.json"] = Access.Open,
        ["GET /"] = Access.Open,
        ["GET /ui/{file}"] = Access.Open,
        ["* /api/{**rest}"] = Access.Open,
        ["POST /api/v1/write"] = Access.Ingest,
        ["POST /v1/metrics"] = Access.Ingest,
        ["POST /api/v1/events"] = Access.Ingest,
        ["POST /api/v1/events/aws-batch"] = Access.Ingest,
        ["GET /api/v1/costs"] = Access.Read,
        ["GET /api/v1/burn"] = Access.Read,
        ["GET /api/v1/workloads"] = Access.Read,
        ["GET /api/v1/workloads/{**id}"] = Access.Read,
        ["GET /api/v1/fleet"] = Access.Read,
        ["GET /api/v1/prices"] = Access.Read,
        ["GET /api/v1/prices/feeds"] = Access.Read,
        ["GET /api/v1/alerts"] = Access.Read,
        ["GET /api/v1/connectors"] = Access.Read,
        ["GET /metrics"] = Access.Read,
        ["GET /api/v1/alerts/delivery"] = Access.Admin,
        ["GET /api/v1/focus"] = Access.Admin,
        ["GET /api/v1/billing/calibration"] = Access.Admin,
        ["POST /api/v1/billing/focus"] = Access.AdminUpload,
    };

    private static readonly string[] s_callers = ["none", "wrong", "wrong-byte", "ingest", "read", "teamA", "teamB", "admin"];

    [Fact]
    public async Task Every_endpoint_answers_every_caller_as_its_scope_says()
    {
        var teamAWorkload = await WorkloadOfAsync(KeyedFleetServer.TeamA);
        var endpoints = fleet.Server.Endpoints.Select(e => (Key: KeyOf(e), Endpoint: e)).ToList();
        var unclassified = endpoints.Select(e => e.Key).Where(k => !s_classified.ContainsKey(k)).ToList();
        Assert.True(unclassified.Count == 0, "endpoints the authorization matrix does not classify (add them with their scope): " + string.Join(", ", unclassified));
        Assert.Equal(s_classified.Count, endpoints.Count);

        var failures = new List<string>();
        foreach (var (key, endpoint) in endpoints)
        {
            var access = s_classified[key];
            var method = key.StartsWith("POST ", StringComparison.Ordinal) ? HttpMethod.Post : HttpMethod.Get;
            var path = key.Split(' ')[1] switch
            {
                "/ui/{file}" => "/ui/app.js",
                "/api/{**rest}" => "/api/v1/no-such-thing",
                "/api/v1/workloads/{**id}" => "/api/v1/workloads/" + Uri.EscapeDataString(teamAWorkload),
                var p => p,
            };
            foreach (var caller in s_callers)
            {
                var secret = caller switch
                {
                    "none" => null,
                    "wrong" => "not-a-key",
                    "wrong-byte" => OneByteOff(fleet.Secrets["admin"]),
                    _ => fleet.Secrets[caller],
                };
                var expected = Expected(access, caller, path);
                using var response = await fleet.SendAsync(method, path, secret);
                var status = (int)response.StatusCode;
                // Past the key check an ingest endpoint judges the body ("[]" is not remote write): any answer but 401/403 is right.
                var ok = expected == 0 ? status is not (401 or 403) : status == expected;
                if (!ok)
                    failures.Add($"{method} {path} as {caller}: expected {(expected == 0 ? "past the key check" : expected)}, got {status}");
                if (status is 401 or 403)
                    Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
                if (status == 401)
                    Assert.StartsWith("Bearer", response.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    /// <summary>The status a caller gets; 0 for "past the key check" on ingest endpoints.</summary>
    private static int Expected(Access access, string caller, string path)
    {
        var unknown = caller is "none" or "wrong" or "wrong-byte";
        return access switch
        {
            Access.Open => path.StartsWith("/api/", StringComparison.Ordinal) ? 404 : 200,
            _ when unknown => 401,
            Access.Ingest => caller is "ingest" or "admin" ? 0 : 403,
            Access.Read when caller == "ingest" => 403,
            // Team B does not see team A's workload: 404, as for an id that does not exist.
            Access.Read when caller == "teamB" && path.StartsWith("/api/v1/workloads/", StringComparison.Ordinal) => 404,
            Access.Read => 200,
            Access.Admin => caller == "admin" ? 200 : 403,
            // Past the key check the upload judges its body (an empty one is not a FOCUS file).
            Access.AdminUpload => caller == "admin" ? 0 : 403,
            _ => throw new ArgumentOutOfRangeException(nameof(access)),
        };
    }

    private static string KeyOf(RouteEndpoint endpoint)
    {
        var methods = endpoint.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods;
        return $"{(methods is { Count: > 0 } ? string.Join(',', methods) : "*")} {endpoint.RoutePattern.RawText}";
    }

    private static string OneByteOff(string secret) =>
        secret[..^1] + (secret[^1] == 'a' ? 'b' : 'a');

    private async Task<string> WorkloadOfAsync(string team)
    {
        using var list = await fleet.GetJsonAsync("/api/v1/workloads", "admin");
        return list.RootElement.GetProperty("workloads").EnumerateArray()
            .First(w => w.GetProperty("team").GetString() == team).GetProperty("id").GetString()!;
    }

    [Fact]
    public async Task A_team_key_asking_for_another_teams_workload_by_id_gets_404_and_its_own_200()
    {
        var other = await WorkloadOfAsync(KeyedFleetServer.TeamB);
        using var refused = await fleet.SendAsync(HttpMethod.Get, "/api/v1/workloads/" + Uri.EscapeDataString(other), fleet.Secrets["teamA"]);
        Assert.Equal(HttpStatusCode.NotFound, refused.StatusCode);
        using var missing = await fleet.SendAsync(HttpMethod.Get, "/api/v1/workloads/no-such-workload", fleet.Secrets["teamA"]);
        // The same answer as for an id that does not exist, so ids of other teams cannot be probed.
        var ct = TestContext.Current.CancellationToken;
        using var missingBody = JsonDocument.Parse(await missing.Content.ReadAsStringAsync(ct));
        using var refusedBody = JsonDocument.Parse(await refused.Content.ReadAsStringAsync(ct));
        Assert.Equal(missingBody.RootElement.GetProperty("title").GetString(), refusedBody.RootElement.GetProperty("title").GetString());
        Assert.Equal(missingBody.RootElement.GetProperty("detail").GetString()!.Replace("no-such-workload", "X", StringComparison.Ordinal),
            refusedBody.RootElement.GetProperty("detail").GetString()!.Replace(other, "X", StringComparison.Ordinal));
        using var own = await fleet.GetJsonAsync("/api/v1/workloads/" + Uri.EscapeDataString(await WorkloadOfAsync(KeyedFleetServer.TeamA)), "teamA");
        Assert.Equal(KeyedFleetServer.TeamA, own.RootElement.GetProperty("team").GetString());
    }

    [Fact]
    public async Task A_team_key_sees_only_its_team_in_costs_by_team_and_the_same_amount_as_admin()
    {
        using var all = await fleet.GetJsonAsync("/api/v1/costs?by=team&from=-1d", "admin");
        var teams = all.RootElement.GetProperty("rows").EnumerateArray().ToDictionary(r => r.GetProperty("keys").GetProperty("team").GetString()!, r => r.GetProperty("cost_usd").GetString());
        Assert.Contains(KeyedFleetServer.TeamA, teams.Keys);
        Assert.Contains(KeyedFleetServer.TeamB, teams.Keys);

        using var own = await fleet.GetJsonAsync("/api/v1/costs?by=team&from=-1d", "teamA");
        var row = Assert.Single(own.RootElement.GetProperty("rows").EnumerateArray());
        Assert.Equal(KeyedFleetServer.TeamA, row.GetProperty("keys").GetProperty("team").GetString());
        Assert.Equal(teams[KeyedFleetServer.TeamA], row.GetProperty("cost_usd").GetString());

        using var byWorkload = await fleet.GetJsonAsync("/api/v1/costs?by=workload,team&from=-1d", "teamA");
        Assert.All(byWorkload.RootElement.GetProperty("rows").EnumerateArray(), r => Assert.Equal(KeyedFleetServer.TeamA, r.GetProperty("keys").GetProperty("team").GetString()));

        // Asking for another team's costs by a filter is refused, not silently emptied.
        using var other = await fleet.SendAsync(HttpMethod.Get, $"/api/v1/costs?by=team&filter=team:{KeyedFleetServer.TeamB}", fleet.Secrets["teamA"]);
        Assert.Equal(HttpStatusCode.Forbidden, other.StatusCode);
        using var otherList = await fleet.SendAsync(HttpMethod.Get, $"/api/v1/workloads?team={KeyedFleetServer.TeamB}", fleet.Secrets["teamA"]);
        Assert.Equal(HttpStatusCode.Forbidden, otherList.StatusCode);
    }

    [Fact]
    public async Task A_team_keys_workload_list_and_burn_hold_its_team_only_and_burn_totals_are_the_sum_of_its_workloads()
    {
        using var list = await fleet.GetJsonAsync("/api/v1/workloads", "teamA");
        var workloads = list.RootElement.GetProperty("workloads").EnumerateArray().ToList();
        Assert.NotEmpty(workloads);
        Assert.All(workloads, w => Assert.Equal(KeyedFleetServer.TeamA, w.GetProperty("team").GetString()));
        using var allList = await fleet.GetJsonAsync("/api/v1/workloads", "read");
        Assert.Equal(allList.RootElement.GetProperty("workloads").EnumerateArray().Count(w => w.GetProperty("team").GetString() == KeyedFleetServer.TeamA), workloads.Count);

        using var burn = await fleet.GetJsonAsync("/api/v1/burn", "teamA");
        var lines = burn.RootElement.GetProperty("workloads").EnumerateArray().ToList();
        Assert.NotEmpty(lines);
        Assert.All(lines, w => Assert.Equal(KeyedFleetServer.TeamA, w.GetProperty("team").GetString()));
        Assert.Equal(lines.Sum(w => decimal.Parse(w.GetProperty("usd_per_hour").GetString()!, System.Globalization.CultureInfo.InvariantCulture)),
            decimal.Parse(burn.RootElement.GetProperty("total_usd_per_hour").GetString()!, System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(lines.Sum(w => decimal.Parse(w.GetProperty("total_usd").GetString()!, System.Globalization.CultureInfo.InvariantCulture)),
            decimal.Parse(burn.RootElement.GetProperty("rated_usd").GetString()!, System.Globalization.CultureInfo.InvariantCulture));

        using var all = await fleet.GetJsonAsync("/api/v1/burn", "admin");
        Assert.Contains(all.RootElement.GetProperty("workloads").EnumerateArray(), w => w.GetProperty("team").GetString() != KeyedFleetServer.TeamA);
        Assert.True(decimal.Parse(all.RootElement.GetProperty("total_usd_per_hour").GetString()!, System.Globalization.CultureInfo.InvariantCulture)
            > decimal.Parse(burn.RootElement.GetProperty("total_usd_per_hour").GetString()!, System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task A_team_keys_metrics_hold_its_teams_cost_series_only()
    {
        var ct = TestContext.Current.CancellationToken;
        using var own = await fleet.SendAsync(HttpMethod.Get, "/metrics", fleet.Secrets["teamA"]);
        var page = await own.Content.ReadAsStringAsync(ct);
        var series = page.Split('\n').Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        Assert.Contains(series, l => l.StartsWith("burnrate_cost_rate_dollars_per_hour{", StringComparison.Ordinal));
        Assert.All(series, l => Assert.Contains($"team=\"{KeyedFleetServer.TeamA}\"", l, StringComparison.Ordinal));
        Assert.DoesNotContain("burnrate_ingest_", page, StringComparison.Ordinal);

        using var all = await fleet.SendAsync(HttpMethod.Get, "/metrics", fleet.Secrets["read"]);
        var allPage = await all.Content.ReadAsStringAsync(ct);
        Assert.Contains($"team=\"{KeyedFleetServer.TeamB}\"", allPage, StringComparison.Ordinal);
        Assert.Contains("burnrate_ingest_requests_total", allPage, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_team_key_sees_its_teams_alerts_and_fleet_only()
    {
        using var all = await fleet.GetJsonAsync("/api/v1/alerts", "admin");
        var allTeams = all.RootElement.GetProperty("alerts").EnumerateArray().Select(a => a.GetProperty("labels").GetProperty("team").GetString()).Distinct().ToList();
        Assert.Contains(KeyedFleetServer.TeamA, allTeams);
        Assert.True(allTeams.Count > 1, "the budget rule fires for several teams");

        using var own = await fleet.GetJsonAsync("/api/v1/alerts", "teamA");
        var alerts = own.RootElement.GetProperty("alerts").EnumerateArray().ToList();
        Assert.NotEmpty(alerts);
        Assert.All(alerts, a => Assert.Equal(KeyedFleetServer.TeamA, a.GetProperty("labels").GetProperty("team").GetString()));

        using var fleetAll = await fleet.GetJsonAsync("/api/v1/fleet", "read");
        using var fleetOwn = await fleet.GetJsonAsync("/api/v1/fleet", "teamA");
        var groups = fleetOwn.RootElement.GetProperty("groups").EnumerateArray().ToList();
        Assert.NotEmpty(groups);
        Assert.All(groups, g => Assert.Equal(KeyedFleetServer.TeamA, g.GetProperty("team").GetString()));
        var teamRow = fleetAll.RootElement.GetProperty("by_team").EnumerateArray().Single(t => t.GetProperty("team").GetString() == KeyedFleetServer.TeamA);
        Assert.Equal(teamRow.GetProperty("gpus").GetInt32(), fleetOwn.RootElement.GetProperty("gpus").GetInt32());
        Assert.True(fleetOwn.RootElement.GetProperty("nodes").GetInt32() < fleetAll.RootElement.GetProperty("nodes").GetInt32());
    }

    [Fact]
    public async Task Refusals_are_problem_details_that_name_the_key_but_never_the_secret()
    {
        using var forbidden = await fleet.SendAsync(HttpMethod.Get, "/api/v1/alerts/delivery", fleet.Secrets["read"]);
        var body = await forbidden.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Forbidden, forbidden.StatusCode);
        Assert.Contains("dashboards", body, StringComparison.Ordinal);
        Assert.Contains("admin", body, StringComparison.Ordinal);
        Assert.DoesNotContain(fleet.Secrets["read"], body, StringComparison.Ordinal);

        // X-Api-Key is accepted as well as Authorization: Bearer.
        using var client = fleet.Server.Client();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/prices");
        request.Headers.Add("X-Api-Key", fleet.Secrets["read"]);
        using var viaHeader = await client.SendAsync(request, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, viaHeader.StatusCode);
    }
}
