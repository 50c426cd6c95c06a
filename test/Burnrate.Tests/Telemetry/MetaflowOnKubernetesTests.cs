using System.Text;
using Burnrate.Alerting;
using Burnrate.Configuration;
using Burnrate.Pricing;
using Burnrate.Protocols.Exposition;
using Burnrate.Rating;
using Burnrate.Storage;
using Burnrate.Storage.DuckDb;
using Burnrate.Telemetry.Mapping;
using Burnrate.Tests.Alerting;

namespace Burnrate.Tests.Telemetry;

/// <summary>
/// Issue 7, Metaflow: pods carrying Metaflow's annotations, seen only through kube-state-metrics, become one workload
/// per flow/run/step with its cost; a second run whose train step asks for twice the GPUs fires step_change.
/// </summary>
public sealed class MetaflowOnKubernetesTests
{
    private static readonly DateTimeOffset s_t0 = new(2026, 3, 2, 9, 0, 0, TimeSpan.Zero);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A kube-state-metrics page: one p4d.24xlarge node and the Metaflow task pods running at that minute.</summary>
    private static string Page(IEnumerable<(string Run, string Step, int Gpus)> pods)
    {
        var page = new StringBuilder("""
            kube_node_labels{node="n1",label_node_kubernetes_io_instance_type="p4d.24xlarge",label_topology_kubernetes_io_region="us-east-1"} 1
            kube_node_status_capacity{node="n1",resource="nvidia_com_gpu",unit="integer"} 8

            """);
        foreach (var (run, step, gpus) in pods)
        {
            var pod = $"t-{run}-{step}";
            var uid = $"u-{run}-{step}";
            page.AppendLine($$"""kube_pod_info{namespace="ml",pod="{{pod}}",uid="{{uid}}",node="n1"} 1""");
            page.AppendLine($$"""kube_pod_labels{namespace="ml",pod="{{pod}}",uid="{{uid}}",label_app_kubernetes_io_part_of="metaflow",label_team="research"} 1""");
            page.AppendLine($$"""kube_pod_annotations{namespace="ml",pod="{{pod}}",uid="{{uid}}",annotation_metaflow_flow_name="TrainFlow",annotation_metaflow_run_id="{{run}}",annotation_metaflow_step_name="{{step}}",annotation_metaflow_task_id="{{run}}0{{step.Length}}",annotation_metaflow_attempt="0",annotation_metaflow_user="bob"} 1""");
            page.AppendLine($$"""kube_pod_container_resource_requests{namespace="ml",pod="{{pod}}",uid="{{uid}}",container="main",node="n1",resource="nvidia_com_gpu",unit="integer"} {{gpus}}""");
        }
        return page.ToString();
    }

    /// <summary>Which task pod runs at minute <paramref name="m"/>: run 1 (prep 1 GPU, train 2), then run 2 (prep 1, train 4).</summary>
    private static IEnumerable<(string Run, string Step, int Gpus)> Running(int m) => m switch
    {
        < 10 => [("1", "prep", 1)],
        < 30 => [("1", "train", 2)],
        >= 40 and < 50 => [("2", "prep", 1)],
        >= 50 and < 70 => [("2", "train", 4)],
        _ => [],
    };

    [Fact]
    public async Task A_steps_gpu_request_on_a_known_instance_is_its_estimate_and_a_dearer_hour_fires_estimate_exceeded()
    {
        var config = BurnrateConfig.Parse("""
            rules:
              - name: over-estimate
                kind: estimate_exceeded
                tolerance_percent: 10
            """);
        var (book, rateCard) = PricingSetup.Load(config);
        var options = config.ToRatingOptions();
        await using var store = await DuckDbCostStore.OpenAsync(":memory:", ct: Ct);
        var sink = new RecordingAlertSink();
        var engine = new RatingEngine(book, rateCard, config.ToAttributionRules(), options);
        using var pipeline = new CostPipeline(engine, store, options) { Alerts = new AlertEngine(config.ToAlertRules(), sink) };
        var mapper = new TelemetryMapper(config.ToMapperOptions()) { Prices = book };
        var onDemand = book.Find("aws", "us-east-1", "", "p4d.24xlarge", CapacityType.OnDemand, s_t0)!.PricePerHour;

        for (var s = 0; s < 20 * 60; s += 15)
        {
            var at = s_t0.AddSeconds(s);
            if (s == 10 * 60) // from 09:10 the instance costs twice as much (a price event, as a feed would send)
                pipeline.Apply([new Burnrate.Telemetry.PriceChanged(at, "aws", "us-east-1", "", "p4d.24xlarge", CapacityType.OnDemand, onDemand * 2)]);
            var parsed = new ExpositionParser(strict: true).Parse(Encoding.UTF8.GetBytes(Page([("1", "train", 1)])), at.ToUnixTimeMilliseconds());
            pipeline.Apply(mapper.Map(parsed.Samples));
            await pipeline.RateClosedMinutesAsync(at, Ct);
        }

        // @resources(gpu=1) on the p4d.24xlarge (8 GPUs): an eighth of its on-demand price at launch.
        var step = Assert.Single(engine.Workloads, w => w.Info.Id == "metaflow:TrainFlow/1/train");
        Assert.Equal(decimal.Round(onDemand / 8, 9), step.EstimatePerHour);
        Assert.Equal(2.744705250m, step.EstimatePerHour);
        // Until 09:10 the step burns its estimate exactly: no alert; then twice it.
        var fired = Assert.Single(sink.All, n => n.State == AlertState.Firing && n.Rule == "over-estimate");
        Assert.Equal("metaflow:TrainFlow/1/train", fired.Labels["workload"]);
        Assert.True(fired.StartsAt >= s_t0.AddMinutes(10), $"fired at {fired.StartsAt:O}");
    }

    [Fact]
    public async Task Metaflow_pods_through_kube_state_metrics_give_cost_per_run_and_step_and_doubled_gpus_fire_step_change()
    {
        var config = BurnrateConfig.Parse("""
            rules:
              - name: gpu-step-change
                kind: step_change
                group_by: [metaflow/flow_name, metaflow/step_name]
                factor: 1.5
            """);
        var (book, rateCard) = PricingSetup.Load(config);
        var options = config.ToRatingOptions();
        await using var store = await DuckDbCostStore.OpenAsync(":memory:", ct: Ct);
        var sink = new RecordingAlertSink();
        using var pipeline = new CostPipeline(new RatingEngine(book, rateCard, config.ToAttributionRules(), options), store, options)
        {
            Alerts = new AlertEngine(config.ToAlertRules(), sink),
        };
        var mapper = new TelemetryMapper(config.ToMapperOptions());

        for (var s = 0; s < 80 * 60; s += 15)
        {
            var at = s_t0.AddSeconds(s);
            var parsed = new ExpositionParser(strict: true).Parse(Encoding.UTF8.GetBytes(Page(Running(s / 60))), at.ToUnixTimeMilliseconds());
            pipeline.Apply(mapper.Map(parsed.Samples));
            await pipeline.RateClosedMinutesAsync(at, Ct);
        }
        await pipeline.RateClosedMinutesAsync(s_t0.AddMinutes(90), Ct);

        // Cost per step (one workload per flow/run/step), and per run (its steps summed).
        var rows = await store.QueryCostsAsync(new CostQuery { From = s_t0, To = s_t0.AddHours(2), By = [CostDimension.Workload] }, Ct);
        var steps = rows.Where(r => r.Keys[0].StartsWith("metaflow:", StringComparison.Ordinal)).ToDictionary(r => r.Keys[0], r => r.Cost.Nanos);
        Assert.Equal(["metaflow:TrainFlow/1/prep", "metaflow:TrainFlow/1/train", "metaflow:TrainFlow/2/prep", "metaflow:TrainFlow/2/train"], steps.Keys.Order(StringComparer.Ordinal));
        var runs = steps.GroupBy(kv => kv.Key.Split('/')[1]).ToDictionary(g => g.Key, g => g.Sum(kv => kv.Value));
        Assert.Equal(steps["metaflow:TrainFlow/1/prep"] + steps["metaflow:TrainFlow/1/train"], runs["1"]);
        // Same durations, twice the GPUs (and twice the node's share): twice the cost — to within one scrape interval,
        // since a pod's start and end are known from kube-state-metrics pages 15 s apart (20 minutes: ±1.25 %).
        Assert.InRange((decimal)steps["metaflow:TrainFlow/2/train"] / steps["metaflow:TrainFlow/1/train"], 1.975m, 2.025m);
        Assert.Equal(steps["metaflow:TrainFlow/1/prep"], steps["metaflow:TrainFlow/2/prep"]);
        var workloads = (await store.GetWorkloadsAsync(cancellationToken: Ct)).ToDictionary(w => w.Workload.Id);
        Assert.Equal(("bob", "research", "TrainFlow"), (workloads["metaflow:TrainFlow/2/train"].Workload.User, workloads["metaflow:TrainFlow/2/train"].Workload.Team,
            workloads["metaflow:TrainFlow/2/train"].Workload.Labels!["metaflow/flow_name"]));

        // step_change: run 2's train (4 GPUs) against run 1's (2); run 2's prep is as before, and run 1 had no history.
        var fired = sink.All.Where(n => n.State == AlertState.Firing && n.Rule == "gpu-step-change").ToList();
        var alert = Assert.Single(fired);
        Assert.Equal("metaflow:TrainFlow/2/train", alert.Annotations["run"]);
        Assert.Equal("4", alert.Annotations["gpus"]);
        Assert.Equal("2", alert.Annotations["previous_gpus"]);
    }
}
