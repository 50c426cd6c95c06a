using System.Globalization;
using System.Net;
using System.Text.Json;
using Burnrate.Pricing;

namespace Burnrate.Tests.Server;

/// <summary>
/// The read API on a server fed by the simulator (baseline fleet + S1's runaway job): workloads, one workload's
/// detail, the fleet, prices, and problem details for what is wrong.
/// </summary>
public sealed class ReadApiTests(SimulatedFleetServer server) : IClassFixture<SimulatedFleetServer>
{
    private const string Runaway = "skypilot:managed-4711";

    private async Task<JsonElement> GetJsonAsync(string pathAndQuery)
    {
        using var response = await server.Http.GetAsync(server.Url + pathAndQuery, TestContext.Current.CancellationToken);
        var text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.True(response.IsSuccessStatusCode, $"{pathAndQuery}: {(int)response.StatusCode} {text}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    private async Task<(HttpStatusCode Status, JsonElement Problem, HttpResponseMessage Response)> GetProblemAsync(string pathAndQuery, HttpMethod? method = null)
    {
        using var request = new HttpRequestMessage(method ?? HttpMethod.Get, server.Url + pathAndQuery);
        var response = await server.Http.SendAsync(request, TestContext.Current.CancellationToken);
        var text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        return (response.StatusCode, JsonDocument.Parse(text).RootElement.Clone(), response);
    }

    private static decimal Usd(JsonElement e) => decimal.Parse(e.GetString()!, CultureInfo.InvariantCulture);

    [Fact]
    public async Task The_workloads_list_puts_s1s_runaway_job_first_at_nine_p5_nodes_times_55_04_an_hour()
    {
        var body = await GetJsonAsync("/api/v1/workloads");
        var workloads = body.GetProperty("workloads").EnumerateArray().ToList();
        Assert.Equal(workloads.Count, body.GetProperty("count").GetInt32());
        var first = workloads[0];
        Assert.Equal(Runaway, first.GetProperty("id").GetString());
        Assert.Equal((9 * 55.04m).ToString("0.000000000", CultureInfo.InvariantCulture), first.GetProperty("usd_per_hour").GetString());
        Assert.Equal("495.360000000", first.GetProperty("usd_per_hour").GetString());
        Assert.Equal("running", first.GetProperty("state").GetString());
        Assert.Equal(JsonValueKind.Null, first.GetProperty("ended").ValueKind);
        Assert.Equal("skypilot", first.GetProperty("orchestrator").GetString());
        Assert.Equal("llm", first.GetProperty("team").GetString());
        Assert.Equal("llama-ft", first.GetProperty("project").GetString());
        Assert.Equal("jlee", first.GetProperty("user").GetString());
        Assert.Equal("55.040000000", first.GetProperty("estimate_usd_per_hour").GetString());
        Assert.Equal(["aws"], first.GetProperty("clouds").EnumerateArray().Select(c => c.GetString()));
        Assert.True(Usd(first.GetProperty("total_usd")) > 0);
        var rates = workloads.Select(w => Usd(w.GetProperty("usd_per_hour"))).ToList();
        Assert.Equal(rates.OrderByDescending(r => r), rates);
        Assert.True(workloads.Count > 5, "the baseline fleet runs many workloads");
    }

    [Fact]
    public async Task The_workloads_list_filters_by_team_and_state()
    {
        var all = (await GetJsonAsync("/api/v1/workloads")).GetProperty("workloads").EnumerateArray().ToList();
        var llm = (await GetJsonAsync("/api/v1/workloads?team=llm")).GetProperty("workloads").EnumerateArray().ToList();
        Assert.NotEmpty(llm);
        Assert.All(llm, w => Assert.Equal("llm", w.GetProperty("team").GetString()));
        Assert.Equal(all.Count(w => w.GetProperty("team").GetString() == "llm"), llm.Count);
        Assert.True(llm.Count < all.Count);
        var running = (await GetJsonAsync("/api/v1/workloads?state=running")).GetProperty("workloads").EnumerateArray().ToList();
        Assert.All(running, w => Assert.Equal("running", w.GetProperty("state").GetString()));
        Assert.Contains(running, w => w.GetProperty("id").GetString() == Runaway);
        var ended = (await GetJsonAsync("/api/v1/workloads?state=ended")).GetProperty("workloads").EnumerateArray().ToList();
        Assert.DoesNotContain(ended, w => w.GetProperty("id").GetString() == Runaway);
        Assert.Equal(all.Count, running.Count + ended.Count);
    }

    [Fact]
    public async Task A_workloads_detail_timeline_adds_up_to_the_cost_api_for_that_workload_to_the_nano_dollar()
    {
        var detail = await GetJsonAsync("/api/v1/workloads/" + Runaway + "?step=5m");
        Assert.Equal(Runaway, detail.GetProperty("id").GetString());
        var timeline = detail.GetProperty("timeline");
        Assert.Equal("5m", timeline.GetProperty("step").GetString());
        var from = timeline.GetProperty("from").GetString()!;
        var to = timeline.GetProperty("to").GetString()!;
        var points = timeline.GetProperty("points").EnumerateArray().ToList();
        Assert.Equal((int)((DateTimeOffset.Parse(to, CultureInfo.InvariantCulture) - DateTimeOffset.Parse(from, CultureInfo.InvariantCulture)) / TimeSpan.FromMinutes(5)), points.Count);
        var sum = points.Sum(p => Usd(p.GetProperty("cost_usd")));
        Assert.True(sum > 0);
        Assert.Equal(sum, Usd(detail.GetProperty("total_usd")));

        var costs = await GetJsonAsync($"/api/v1/costs?filter=workload:{Runaway}&from={from}&to={to}");
        Assert.Equal(Usd(costs.GetProperty("total_usd")), sum);
        // And bucket by bucket against the cost API's own steps.
        var stepped = await GetJsonAsync($"/api/v1/costs?filter=workload:{Runaway}&from={from}&to={to}&step=5m");
        var byBucket = stepped.GetProperty("rows").EnumerateArray().ToDictionary(r => DateTimeOffset.Parse(r.GetProperty("bucket").GetString()!, CultureInfo.InvariantCulture), r => Usd(r.GetProperty("cost_usd")));
        foreach (var p in points)
            Assert.Equal(byBucket.GetValueOrDefault(DateTimeOffset.Parse(p.GetProperty("at").GetString()!, CultureInfo.InvariantCulture)), Usd(p.GetProperty("cost_usd")));
    }

    [Fact]
    public async Task A_workloads_detail_shows_its_gpus_work_cost_estimate_and_alerts()
    {
        var detail = await GetJsonAsync("/api/v1/workloads/" + Runaway);
        Assert.Equal("1m", detail.GetProperty("timeline").GetProperty("step").GetString()); // 40 minutes of life: per minute
        var gpus = detail.GetProperty("gpus").EnumerateArray().ToList();
        Assert.Equal(72, gpus.Count);
        Assert.All(gpus, g => Assert.Equal("H100", g.GetProperty("gpu_type").GetString()));
        Assert.Equal(9, gpus.Select(g => g.GetProperty("node").GetString()).Distinct().Count());
        Assert.Equal(9, detail.GetProperty("nodes").GetArrayLength());

        var total = Usd(detail.GetProperty("total_usd"));
        var steps = detail.GetProperty("work").EnumerateArray().Single(w => w.GetProperty("metric").GetString() == "steps");
        var count = (decimal)steps.GetProperty("total").GetDouble();
        Assert.True(count > 0);
        Assert.Equal(decimal.Round(total / count, 9, MidpointRounding.AwayFromZero), Usd(steps.GetProperty("usd_per_unit")));

        var estimate = detail.GetProperty("estimate");
        Assert.Equal("55.040000000", estimate.GetProperty("estimate_usd_per_hour").GetString());
        Assert.Equal("495.360000000", estimate.GetProperty("current_usd_per_hour").GetString());
        // Billed from its start at minute 1 at 9 × 55.04: the average over its rated life is the same rate, 9 times the estimate.
        Assert.Equal(495.36m, Usd(estimate.GetProperty("actual_usd_per_hour")));
        Assert.Equal(9m, estimate.GetProperty("ratio").GetDecimal());

        Assert.Contains(detail.GetProperty("alerts").EnumerateArray(), a => a.GetProperty("rule").GetString() == "runaway-spend" && a.GetProperty("state").GetString() == "firing");
    }

    [Fact]
    public async Task Workload_ids_with_slashes_and_colons_work_raw_or_percent_encoded()
    {
        var list = (await GetJsonAsync("/api/v1/workloads")).GetProperty("workloads").EnumerateArray();
        var id = list.Select(w => w.GetProperty("id").GetString()!).First(i => i.StartsWith("metaflow:", StringComparison.Ordinal) && i.Contains('/', StringComparison.Ordinal));
        var raw = await GetJsonAsync("/api/v1/workloads/" + id);
        var encoded = await GetJsonAsync("/api/v1/workloads/" + Uri.EscapeDataString(id));
        Assert.Equal(id, raw.GetProperty("id").GetString());
        Assert.Equal(id, encoded.GetProperty("id").GetString());
        Assert.Equal(raw.GetProperty("total_usd").GetString(), encoded.GetProperty("total_usd").GetString());
    }

    [Fact]
    public async Task An_unknown_workload_is_a_404_problem_naming_it()
    {
        var (status, problem, response) = await GetProblemAsync("/api/v1/workloads/slurm:999999");
        using (response)
        {
            Assert.Equal(HttpStatusCode.NotFound, status);
            Assert.Equal(404, problem.GetProperty("status").GetInt32());
            Assert.Contains("slurm:999999", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("/api/v1/workloads/" + Runaway + "?step=90s", "step")]
    [InlineData("/api/v1/workloads/" + Runaway + "?step=fast", "step")]
    [InlineData("/api/v1/workloads/" + Runaway + "?from=yesterday", "from")]
    [InlineData("/api/v1/workloads/" + Runaway + "?bucket=1h", "bucket")]
    [InlineData("/api/v1/workloads?state=paused", "state")]
    [InlineData("/api/v1/workloads?to=soon", "to")]
    [InlineData("/api/v1/prices?capacity=cheap", "capacity")]
    [InlineData("/api/v1/prices?at=later", "at")]
    [InlineData("/api/v1/fleet?team=llm", "team")]
    public async Task A_bad_parameter_is_a_400_problem_naming_the_parameter(string pathAndQuery, string parameter)
    {
        var (status, problem, response) = await GetProblemAsync(pathAndQuery);
        using (response)
        {
            Assert.Equal(HttpStatusCode.BadRequest, status);
            Assert.Contains(parameter, problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Unknown_api_paths_and_wrong_methods_answer_problem_details()
    {
        var (status, problem, response) = await GetProblemAsync("/api/v1/nothing-here");
        using (response)
        {
            Assert.Equal(HttpStatusCode.NotFound, status);
            Assert.Contains("/api/v1/nothing-here", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        }
        (status, problem, response) = await GetProblemAsync("/api/v1/costs", HttpMethod.Delete);
        using (response)
        {
            Assert.Equal(HttpStatusCode.MethodNotAllowed, status);
            Assert.Equal("GET", response.Content.Headers.Allow.Single());
        }
        (status, _, response) = await GetProblemAsync("/no/such/page");
        using (response)
            Assert.Equal(HttpStatusCode.NotFound, status);
    }

    [Fact]
    public async Task The_fleet_counts_equal_the_simulators_fleet()
    {
        var fleet = await GetJsonAsync("/api/v1/fleet");
        var at = DateTimeOffset.Parse(fleet.GetProperty("at").GetString()!, CultureInfo.InvariantCulture);
        var (nodes, held) = server.Reference(at);
        var gpus = nodes.Values.Sum(n => n.Spec.GpuCount);
        var allocated = held.Count(h => h.Value.Count > 0 && nodes.ContainsKey(h.Key.Node));
        Assert.Equal(nodes.Count, fleet.GetProperty("nodes").GetInt32());
        Assert.Equal(gpus, fleet.GetProperty("gpus").GetInt32());
        Assert.Equal(allocated, fleet.GetProperty("allocated_gpus").GetInt32());
        Assert.Equal(gpus - allocated, fleet.GetProperty("idle_gpus").GetInt32());
        Assert.True(gpus - allocated > 0, "the baseline keeps some GPUs idle");

        foreach (var byCloud in fleet.GetProperty("by_cloud").EnumerateArray())
        {
            var cloud = byCloud.GetProperty("cloud").GetString();
            Assert.Equal(nodes.Values.Where(n => n.Spec.Provider == cloud).Sum(n => n.Spec.GpuCount), byCloud.GetProperty("gpus").GetInt32());
        }
        foreach (var byCapacity in fleet.GetProperty("by_capacity_type").EnumerateArray())
        {
            var capacity = byCapacity.GetProperty("capacity_type").GetString();
            Assert.Equal(nodes.Values.Where(n => n.Capacity.ToName() == capacity).Sum(n => n.Spec.GpuCount), byCapacity.GetProperty("gpus").GetInt32());
        }
        // S1: nine p5.48xlarge, 8 H100 each, all held by the runaway job of team llm.
        var s1 = fleet.GetProperty("groups").EnumerateArray().Single(g =>
            g.GetProperty("cloud").GetString() == "aws" && g.GetProperty("gpu_type").GetString() == "H100" && g.GetProperty("team").GetString() == "llm");
        Assert.Equal(72, s1.GetProperty("gpus").GetInt32());
        Assert.Equal(72, s1.GetProperty("allocated_gpus").GetInt32());
        Assert.Equal("495.360000000", s1.GetProperty("usd_per_hour").GetString());
        Assert.Equal("0.000000000", s1.GetProperty("idle_usd_per_hour").GetString());

        // The fleet's rate is every running node's price in force (the price book, spot moves included).
        var priced = nodes.Values.Sum(n => (server.Book.Find(n.Spec.Provider, n.Spec.Region, n.Spec.Zone, n.Spec.InstanceType, n.Capacity, at)
            ?? server.Book.Find(n.Spec.Provider, n.Spec.Region, n.Spec.Zone, n.Spec.InstanceType, CapacityType.OnDemand, at))!.PricePerHour);
        Assert.Equal(priced, Usd(fleet.GetProperty("usd_per_hour")));
        var burn = await GetJsonAsync("/api/v1/burn");
        var idle = burn.GetProperty("workloads").EnumerateArray().Where(w => w.GetProperty("workload").GetString() == "").Sum(w => Usd(w.GetProperty("usd_per_hour")));
        Assert.Equal(idle, Usd(fleet.GetProperty("idle_usd_per_hour")));
        Assert.True(idle > 0);
    }

    [Fact]
    public async Task Prices_are_the_price_book_in_force_filtered_by_gpu_and_cloud()
    {
        var all = await GetJsonAsync("/api/v1/prices");
        var at = DateTimeOffset.Parse(all.GetProperty("at").GetString()!, CultureInfo.InvariantCulture);
        Assert.Equal(server.Book.InForce(at).Count, all.GetProperty("count").GetInt32());

        var h100 = await GetJsonAsync("/api/v1/prices?gpu=h100&cloud=aws");
        var rows = h100.GetProperty("prices").EnumerateArray().ToList();
        Assert.NotEmpty(rows);
        Assert.Equal(server.Book.InForce(at).Count(p => p.Provider == "aws" && p.GpuModel.StartsWith("H100", StringComparison.OrdinalIgnoreCase)), rows.Count);
        Assert.All(rows, r =>
        {
            Assert.Equal("aws", r.GetProperty("cloud").GetString());
            Assert.StartsWith("H100", r.GetProperty("gpu_type").GetString(), StringComparison.Ordinal);
        });
        Assert.Contains(rows, r => r.GetProperty("instance_type").GetString() == "p5.48xlarge" && r.GetProperty("region").GetString() == "us-east-1"
            && r.GetProperty("capacity_type").GetString() == "on_demand" && r.GetProperty("usd_per_hour").GetString() == "55.040000000");
        var spot = await GetJsonAsync("/api/v1/prices?gpu=H100&cloud=aws&capacity=spot");
        Assert.All(spot.GetProperty("prices").EnumerateArray(), r => Assert.Equal("spot", r.GetProperty("capacity_type").GetString()));
        Assert.True(spot.GetProperty("count").GetInt32() < rows.Count);
    }
}
