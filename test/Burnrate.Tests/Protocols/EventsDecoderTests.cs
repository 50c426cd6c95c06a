using System.Text;
using Burnrate.Attribution;
using Burnrate.Inventory;
using Burnrate.Pricing;
using Burnrate.Protocols.Events;
using Burnrate.Telemetry;

namespace Burnrate.Tests.Protocols;

public sealed class EventsDecoderTests
{
    private static readonly DateTimeOffset s_t0 = new(2025, 6, 15, 12, 0, 0, TimeSpan.Zero);

    private static IReadOnlyList<FleetEvent> Decode(string json) => EventsDecoder.Decode(Encoding.UTF8.GetBytes(json));

    private static FleetEvent Single(string json) => Assert.Single(Decode(json));

    private static InvalidTelemetryException Rejected(string json) => Assert.Throws<InvalidTelemetryException>(() => Decode(json));

    [Fact]
    public void Node_started_carries_the_whole_node_spec()
    {
        var e = Single("""
            {"type": "node_started", "time": "2025-06-15T12:00:00Z",
             "node": {"id": "i-0abc", "provider": "AWS", "region": "us-east-1", "zone": "us-east-1a", "instance_type": "p4d.24xlarge",
                      "capacity": "spot", "gpus": 8, "gpu_model": "A100", "cluster": "sky-train", "account": "123456789012",
                      "labels": {"team": "research"}}}
            """);

        var started = Assert.IsType<NodeStarted>(e);
        Assert.Equal(s_t0, started.Time);
        var n = started.Node;
        Assert.Equal(("i-0abc", "aws", "us-east-1", "us-east-1a", "p4d.24xlarge", CapacityType.Spot, 8, "A100", "sky-train", "123456789012"),
            (n.Id, n.Provider, n.Region, n.Zone, n.InstanceType, n.Capacity, n.GpuCount, n.GpuModel, n.Cluster, n.Account));
        Assert.Equal("research", n.Labels!["team"]);
    }

    [Fact]
    public void Node_started_without_optional_fields_is_on_demand_with_no_zone_or_gpus()
    {
        var n = Assert.IsType<NodeStarted>(Single("""{"type": "node_started", "time": "2025-06-15T12:00:00Z", "node": {"id": "n1", "provider": "lambda", "region": "us-tx-1", "instance_type": "gpu_1x_h100"}}""")).Node;

        Assert.Equal((CapacityType.OnDemand, "", 0, "", null), (n.Capacity, n.Zone, n.GpuCount, n.GpuModel, n.Labels));
    }

    [Fact]
    public void Node_stopped_and_capacity_changed_name_the_node()
    {
        var events = Decode("""
            [{"type": "node_stopped", "time": "2025-06-15T12:00:00Z", "node_id": "i-1"},
             {"type": "capacity_changed", "time": "2025-06-15T12:00:00Z", "node_id": "i-2", "capacity": "on-demand"}]
            """);

        Assert.Equal(new NodeStopped(s_t0, "i-1"), events[0]);
        Assert.Equal(new CapacityChanged(s_t0, "i-2", CapacityType.OnDemand), events[1]);
    }

    [Fact]
    public void Price_changed_keeps_the_price_exact_from_a_number_or_a_string()
    {
        var events = Decode("""
            [{"type": "price_changed", "time": "2025-06-15T12:00:00Z", "provider": "aws", "region": "us-east-1", "instance_type": "p4d.24xlarge", "capacity": "spot", "usd_per_hour": 9.897851},
             {"type": "price_changed", "time": "2025-06-15T12:00:00Z", "provider": "aws", "region": "us-east-1", "zone": "us-east-1a", "instance_type": "p4d.24xlarge", "capacity": "spot", "usd_per_hour": "0.1"}]
            """);

        Assert.Equal(new PriceChanged(s_t0, "aws", "us-east-1", "", "p4d.24xlarge", CapacityType.Spot, 9.897851m), events[0]);
        Assert.Equal(0.1m, ((PriceChanged)events[1]).PricePerHour);
        Assert.Equal("us-east-1a", ((PriceChanged)events[1]).Zone);
    }

    [Fact]
    public void Workload_started_carries_its_people_labels_and_launch_estimate()
    {
        var w = Assert.IsType<WorkloadStarted>(Single("""
            {"type": "workload_started", "time": "2025-06-15T12:00:00+02:00", "estimate_usd_per_hour": 21.96,
             "workload": {"id": "skypilot:7", "orchestrator": "skypilot", "name": "train-llama", "user": "ana", "team": "research",
                          "project": "llm", "model": "llama-3-8b", "labels": {"sweep": "lr"}}}
            """));

        Assert.Equal(s_t0.AddHours(-2), w.Time);
        Assert.Equal(21.96m, w.EstimatePerHour);
        Assert.Equal(("skypilot:7", "skypilot", "train-llama", "ana", "research", "llm", "llama-3-8b"),
            (w.Workload.Id, w.Workload.Orchestrator, w.Workload.Name, w.Workload.User, w.Workload.Team, w.Workload.Project, w.Workload.Model));
        Assert.Equal("lr", w.Workload.Labels!["sweep"]);
    }

    [Fact]
    public void Workload_started_with_only_an_id_is_a_manual_workload_named_by_its_id_without_estimate()
    {
        var w = Assert.IsType<WorkloadStarted>(Single("""{"type": "workload_started", "time": "2025-06-15T12:00:00Z", "workload": {"id": "job-1"}}"""));

        Assert.Equal(new WorkloadInfo("job-1", "manual", "job-1"), w.Workload);
        Assert.Null(w.EstimatePerHour);
    }

    [Fact]
    public void Workload_stopped_names_the_workload()
    {
        Assert.Equal(new WorkloadStopped(s_t0, "job-1"), Single("""{"type": "workload_stopped", "time": "2025-06-15T12:00:00Z", "workload_id": "job-1"}"""));
    }

    [Theory]
    [InlineData("", "whole")]
    [InlineData(", \"share\": \"whole\"", "whole")]
    [InlineData(", \"share\": \"mig:3g.40gb\"", "mig:3g.40gb")]
    [InlineData(", \"share\": \"shared:1/4\"", "shared:1/4")]
    public void Gpu_allocated_reads_the_share_and_defaults_to_the_whole_gpu(string share, string expected)
    {
        var a = Assert.IsType<GpuAllocated>(Single($$"""{"type": "gpu_allocated", "time": "2025-06-15T12:00:00Z", "workload_id": "w", "node_id": "n", "gpu_index": 3{{share}}}"""));

        Assert.Equal(("w", "n", 3, expected), (a.WorkloadId, a.NodeId, a.GpuIndex, a.Share.ToString()));
    }

    [Fact]
    public void Mig_share_is_its_compute_slices_over_seven()
    {
        var a = Assert.IsType<GpuAllocated>(Single("""{"type": "gpu_allocated", "time": "2025-06-15T12:00:00Z", "workload_id": "w", "node_id": "n", "gpu_index": 0, "share": "mig:1g.10gb"}"""));

        Assert.Equal((1, 7), (a.Share.Numerator, a.Share.Denominator));
    }

    [Fact]
    public void Gpu_released_names_workload_node_and_gpu()
    {
        Assert.Equal(new GpuReleased(s_t0, "w", "n", 7), Single("""{"type": "gpu_released", "time": "2025-06-15T12:00:00Z", "workload_id": "w", "node_id": "n", "gpu_index": 7}"""));
    }

    [Theory]
    [InlineData("internet", TransferKind.Internet)]
    [InlineData("cross_region", TransferKind.CrossRegion)]
    [InlineData("cross_zone", TransferKind.CrossZone)]
    [InlineData("same_zone", TransferKind.SameZone)]
    public void Bytes_transferred_reads_each_kind_and_a_byte_count_above_int32(string kind, TransferKind expected)
    {
        var e = Single($$"""{"type": "bytes_transferred", "time": "2025-06-15T12:00:00Z", "workload_id": "w", "node_id": "n", "kind": "{{kind}}", "bytes": 10000000000000}""");

        Assert.Equal(new BytesTransferred(s_t0, "w", "n", expected, 10_000_000_000_000), e);
    }

    [Fact]
    public void Storage_changed_carries_the_volume_and_its_size()
    {
        var e = Single("""{"type": "storage_changed", "time": "2025-06-15T12:00:00Z", "volume_id": "vol-1", "workload_id": "w", "provider": "aws", "region": "us-east-1", "storage_class": "ssd", "size_gb": 500}""");

        Assert.Equal(new StorageChanged(s_t0, "vol-1", "w", "aws", "us-east-1", "ssd", 500m), e);
    }

    [Fact]
    public void Work_counter_carries_the_running_total()
    {
        Assert.Equal(new WorkCounter(s_t0, "w", "tokens", 1.5e9), Single("""{"type": "work_counter", "time": "2025-06-15T12:00:00Z", "workload_id": "w", "metric": "tokens", "total": 1.5e9}"""));
    }

    [Fact]
    public void A_single_object_an_array_and_an_events_wrapper_decode_alike_in_document_order()
    {
        const string a = """{"type": "workload_stopped", "time": "2025-06-15T12:01:00Z", "workload_id": "b"}""";
        const string b = """{"type": "workload_stopped", "time": "2025-06-15T12:00:00Z", "workload_id": "a"}""";

        Assert.Equal([new WorkloadStopped(s_t0.AddMinutes(1), "b")], Decode(a));
        Assert.Equal(Decode($"[{a},{b}]"), Decode($$"""{"events": [{{a}},{{b}}]}"""));
        Assert.Equal(["b", "a"], Decode($"[{a},{b}]").Cast<WorkloadStopped>().Select(e => e.WorkloadId));
        Assert.Empty(Decode("[]"));
    }

    [Fact]
    public void Unknown_fields_are_ignored()
    {
        Assert.IsType<WorkloadStopped>(Single("""{"type": "workload_stopped", "time": "2025-06-15T12:00:00Z", "workload_id": "w", "exit_code": 0}"""));
    }

    [Fact]
    public void An_unknown_type_is_rejected_naming_the_event_and_the_known_types()
    {
        var e = Rejected("""[{"type": "workload_stopped", "time": "2025-06-15T12:00:00Z", "workload_id": "w"}, {"type": "node_exploded", "time": "2025-06-15T12:00:00Z"}]""");

        Assert.StartsWith("event 1: field 'type' unknown event type 'node_exploded'", e.Message);
        Assert.Contains("node_started", e.Message);
    }

    [Theory]
    [InlineData("""{"time": "2025-06-15T12:00:00Z", "workload_id": "w"}""", "event 0: field 'type' is required")]
    [InlineData("""{"type": "workload_stopped", "workload_id": "w"}""", "event 0: field 'time' is required")]
    [InlineData("""{"type": "workload_stopped", "time": "2025-06-15T12:00:00Z"}""", "event 0: field 'workload_id' is required")]
    [InlineData("""{"type": "workload_stopped", "time": "2025-06-15T12:00:00Z", "workload_id": ""}""", "event 0: field 'workload_id' must be a non-empty string")]
    [InlineData("""{"type": "workload_started", "time": "2025-06-15T12:00:00Z"}""", "event 0: field 'workload' is required")]
    [InlineData("""{"type": "workload_started", "time": "2025-06-15T12:00:00Z", "workload": {"name": "x"}}""", "event 0: field 'workload.id' is required")]
    [InlineData("""{"type": "node_started", "time": "2025-06-15T12:00:00Z", "node": {"id": "n", "provider": "aws", "region": "us-east-1"}}""", "event 0: field 'node.instance_type' is required")]
    [InlineData("""{"type": "gpu_released", "time": "2025-06-15T12:00:00Z", "workload_id": "w", "node_id": "n"}""", "event 0: field 'gpu_index' is required")]
    [InlineData("""{"type": "price_changed", "time": "2025-06-15T12:00:00Z", "provider": "aws", "region": "r", "instance_type": "t", "capacity": "spot"}""", "event 0: field 'usd_per_hour' is required")]
    public void A_missing_required_field_is_rejected_naming_the_event_and_field(string json, string expected)
    {
        Assert.StartsWith(expected, Rejected(json).Message);
    }

    [Theory]
    [InlineData("yesterday")]
    [InlineData("2025-06-15T12:00:00")] // no offset: ambiguous
    [InlineData("2025-06-15")]
    [InlineData("2025-13-15T12:00:00Z")]
    [InlineData("1749988800")]
    public void A_time_that_is_not_rfc_3339_with_an_offset_is_rejected(string time)
    {
        var e = Rejected($$"""[{"type": "workload_stopped", "time": "2025-06-15T12:00:00Z", "workload_id": "w"}, {"type": "workload_stopped", "time": "{{time}}", "workload_id": "w"}]""");

        Assert.StartsWith("event 1: field 'time'", e.Message);
    }

    [Fact]
    public void A_numeric_time_is_rejected()
    {
        Assert.StartsWith("event 0: field 'time' must be a non-empty string", Rejected("""{"type": "workload_stopped", "time": 1749988800, "workload_id": "w"}""").Message);
    }

    [Theory]
    [InlineData("""{"type": "capacity_changed", "time": "2025-06-15T12:00:00Z", "node_id": "n", "capacity": "cheap"}""", "event 0: field 'capacity' 'cheap' is not a capacity type")]
    [InlineData("""{"type": "node_started", "time": "2025-06-15T12:00:00Z", "node": {"id": "n", "provider": "aws", "region": "r", "instance_type": "t", "capacity": "free"}}""", "event 0: field 'node.capacity' 'free' is not a capacity type")]
    public void A_bad_capacity_is_rejected(string json, string expected)
    {
        Assert.StartsWith(expected, Rejected(json).Message);
    }

    [Theory]
    [InlineData("mig:9g.80gb")]
    [InlineData("mig:big")]
    [InlineData("shared:5/4")]
    [InlineData("shared:0/4")]
    [InlineData("shared:1/0")]
    [InlineData("half")]
    public void A_bad_share_is_rejected(string share)
    {
        var e = Rejected($$"""{"type": "gpu_allocated", "time": "2025-06-15T12:00:00Z", "workload_id": "w", "node_id": "n", "gpu_index": 0, "share": "{{share}}"}""");

        Assert.StartsWith($"event 0: field 'share' '{share}' is not a GPU share", e.Message);
    }

    [Theory]
    [InlineData("\"bytes\": -1", "bytes")]
    [InlineData("\"bytes\": 1.5", "bytes")]
    [InlineData("\"bytes\": \"100\"", "bytes")]
    [InlineData("\"bytes\": 1, \"kind\": \"moon\"", "kind")]
    public void Negative_fractional_or_string_bytes_and_an_unknown_transfer_kind_are_rejected(string fields, string field)
    {
        var json = $$"""{"type": "bytes_transferred", "time": "2025-06-15T12:00:00Z", "workload_id": "w", "node_id": "n", "kind": "internet", {{fields}}}""";

        Assert.StartsWith($"event 0: field '{field}'", Rejected(json).Message);
    }

    [Theory]
    [InlineData("""{"type": "gpu_released", "time": "2025-06-15T12:00:00Z", "workload_id": "w", "node_id": "n", "gpu_index": -1}""", "gpu_index")]
    [InlineData("""{"type": "storage_changed", "time": "2025-06-15T12:00:00Z", "volume_id": "v", "workload_id": "w", "provider": "aws", "region": "r", "storage_class": "ssd", "size_gb": -5}""", "size_gb")]
    [InlineData("""{"type": "work_counter", "time": "2025-06-15T12:00:00Z", "workload_id": "w", "metric": "tokens", "total": -1}""", "total")]
    [InlineData("""{"type": "price_changed", "time": "2025-06-15T12:00:00Z", "provider": "aws", "region": "r", "instance_type": "t", "capacity": "spot", "usd_per_hour": "-1"}""", "usd_per_hour")]
    [InlineData("""{"type": "workload_started", "time": "2025-06-15T12:00:00Z", "workload": {"id": "w", "labels": {"team": 7}}}""", "workload.labels.team")]
    [InlineData("""{"type": "node_started", "time": "2025-06-15T12:00:00Z", "node": {"id": "n", "provider": "aws", "region": "r", "instance_type": "t", "gpus": "8"}}""", "node.gpus")]
    [InlineData("""{"type": "cpu_allocated", "time": "2025-06-15T12:00:00Z", "workload_id": "w", "node_id": "n", "cpus": 0, "node_cpus": 64}""", "cpus")]
    [InlineData("""{"type": "cpu_allocated", "time": "2025-06-15T12:00:00Z", "workload_id": "w", "node_id": "n", "cpus": 65, "node_cpus": 64}""", "cpus")]
    [InlineData("""{"type": "cpu_allocated", "time": "2025-06-15T12:00:00Z", "workload_id": "w", "node_id": "n", "cpus": 8}""", "node_cpus")]
    [InlineData("""{"type": "cpu_allocated", "time": "2025-06-15T12:00:00Z", "workload_id": "w", "node_id": "n", "cpus": "8", "node_cpus": 64}""", "cpus")]
    public void Negative_numbers_and_wrongly_typed_fields_are_rejected_naming_the_field(string json, string field)
    {
        Assert.StartsWith($"event 0: field '{field}'", Rejected(json).Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("{\"type\": ")]
    [InlineData("42")]
    [InlineData("\"node_started\"")]
    [InlineData("[42]")]
    [InlineData("{\"events\": {}}")]
    public void A_body_that_is_not_json_events_is_rejected(string body)
    {
        Rejected(body);
    }
}
