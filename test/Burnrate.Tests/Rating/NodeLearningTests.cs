using Burnrate.Inventory;
using Burnrate.Pricing;
using Burnrate.Rating;
using Burnrate.Telemetry;
using Burnrate.Tests.Support;

namespace Burnrate.Tests.Rating;

/// <summary>
/// A node named by telemetry before its GPU count arrives (remote write shards series across requests) learns its GPUs
/// from a later description; and <see cref="RatingEngine.Refers"/>, which decides what the write-ahead log keeps.
/// </summary>
public sealed class NodeLearningTests
{
    private readonly FakePriceBook _book = new();
    private readonly RatingEngine _engine;

    public NodeLearningTests() => _engine = new RatingEngine(_book, new FakeRateCard());

    private static Money Sum(IEnumerable<CostLine> lines) => new(lines.Sum(l => l.Cost.Nanos));

    [Fact]
    public void A_node_first_heard_of_without_gpus_gets_its_gpus_from_a_later_heartbeat_and_gpu_lines_from_then_on()
    {
        // $72/h = $1.20 a minute: 8 GPUs × $7.20/h + compute $14.40/h.
        _book.Add(Some.Price("p4d.24xlarge", CapacityType.OnDemand, 72m, 7.2m, 8));
        var unknownGpus = Some.Node("i-late", "p4d.24xlarge", 0, model: "");
        var eightGpus = Some.Node("i-late", "p4d.24xlarge", 8, model: "A100");

        // Minute 12:00: the node has no GPUs yet, so an allocation on it refers to a GPU that does not exist.
        _engine.Apply(new NodeHeartbeat(Some.At(12, 0), unknownGpus));
        _engine.Apply(new WorkloadStarted(Some.At(12, 0, 10), Some.Workload("k8s:ml/train-0")));
        _engine.Apply(new GpuAllocated(Some.At(12, 0, 10), "k8s:ml/train-0", "i-late", 0, GpuShare.Whole));
        _engine.Apply(new NodeHeartbeat(Some.At(12, 0, 30), unknownGpus));
        _engine.Apply(new NodeHeartbeat(Some.At(12, 1), unknownGpus));
        Assert.Equal(1, _engine.OrphanEvents);
        var first = _engine.RateMinute(Some.At(12, 0)).Lines;

        // The whole price is booked, all of it as the node's compute part: no GPU lines, nothing to the workload.
        Assert.Equal(Money.FromDollars(1.20m), Sum(first));
        Assert.All(first, l => Assert.Equal((-1, CostComponent.Compute, ""), (l.GpuIndex, l.Component, l.WorkloadId)));

        // Then the GPU count arrives; the workload takes GPUs 0 and 1. A later description without the count (another
        // shard) does not take the GPUs away.
        _engine.Apply(new NodeHeartbeat(Some.At(12, 1), eightGpus));
        _engine.Apply(new GpuAllocated(Some.At(12, 1), "k8s:ml/train-0", "i-late", 0, GpuShare.Whole));
        _engine.Apply(new GpuAllocated(Some.At(12, 1), "k8s:ml/train-0", "i-late", 1, GpuShare.Whole));
        _engine.Apply(new NodeHeartbeat(Some.At(12, 1, 30), unknownGpus));
        _engine.Apply(new NodeHeartbeat(Some.At(12, 2), unknownGpus));
        Assert.Equal(1, _engine.OrphanEvents);
        var second = _engine.RateMinute(Some.At(12, 1)).Lines;

        // GPU $7.20/h = $0.12 a minute each; the workload holds 2 of 8 GPUs, so 2/8 of compute $14.40/h = $0.06.
        Assert.Equal(Money.FromDollars(1.20m), Sum(second));
        Assert.Equal(Enumerable.Range(0, 8), second.Where(l => l.Component == CostComponent.Gpu).Select(l => l.GpuIndex).Distinct().Order());
        var workload = second.Where(l => l.WorkloadId == "k8s:ml/train-0").ToList();
        Assert.Equal(Money.FromDollars(0.24m), Sum(workload.Where(l => l.Component == CostComponent.Gpu)));
        Assert.Equal([0, 1], workload.Where(l => l.Component == CostComponent.Gpu).Select(l => l.GpuIndex).Order());
        Assert.Equal(Money.FromDollars(0.06m), Sum(workload.Where(l => l.Component == CostComponent.Compute)));
        Assert.Equal(Money.FromDollars(0.72m), Sum(second.Where(l => l.Component == CostComponent.Gpu && l.IsIdle)));
        Assert.All(second, l => Assert.Equal("A100", l.GpuModel)); // the model, unknown at first, is learned too
    }

    [Fact]
    public void A_later_description_never_changes_the_price_key_the_node_was_first_described_with()
    {
        // First described as a p4d; a later sample claims another type. The p4d price stays in force.
        _book.Add(Some.Price("p4d.24xlarge", CapacityType.OnDemand, 72m, 7.2m, 8));
        _book.Add(Some.Price("p5.48xlarge", CapacityType.OnDemand, 144m, 14.4m, 8));
        _engine.Apply(new NodeHeartbeat(Some.At(12, 0), Some.Node("i-1", "p4d.24xlarge", 0)));
        _engine.Apply(new NodeHeartbeat(Some.At(12, 0, 30), Some.Node("i-1", "p5.48xlarge", 8)));
        _engine.Apply(new NodeHeartbeat(Some.At(12, 1), Some.Node("i-1", "p5.48xlarge", 8)));

        var lines = _engine.RateMinute(Some.At(12, 0)).Lines;

        Assert.Equal(Money.FromDollars(1.20m), Sum(lines));
        Assert.All(lines, l => Assert.Equal("p4d.24xlarge", l.InstanceType));
    }

    [Fact]
    public void Refers_answers_whether_an_event_is_about_something_the_engine_still_holds_or_is_a_price()
    {
        _book.Add(Some.Price("p4d.24xlarge", CapacityType.OnDemand, 72m, 7.2m, 8));
        var node = Some.Node("i-1", "p4d.24xlarge", 8);
        var t = Some.At(12, 0);
        _engine.Apply(new NodeStarted(t, node));
        _engine.Apply(new WorkloadStarted(t, Some.Workload("w-running")));
        _engine.Apply(new WorkloadStarted(t, Some.Workload("w-ended")));
        _engine.Apply(new GpuAllocated(t, "w-ended", "i-1", 0, GpuShare.Whole));
        _engine.Apply(new StorageChanged(t, "vol-1", "w-running", "aws", "us-east-1", "gp3", 100));
        _engine.Apply(new WorkloadStopped(Some.At(12, 5), "w-ended"));

        Assert.True(_engine.Refers(new NodeStarted(t, node)));
        Assert.True(_engine.Refers(new NodeHeartbeat(t, node)));
        Assert.True(_engine.Refers(new NodeStopped(t, "i-1")));
        Assert.True(_engine.Refers(new CapacityChanged(t, "i-1", CapacityType.Spot)));
        Assert.False(_engine.Refers(new NodeStarted(t, Some.Node("i-other", "p4d.24xlarge", 8))));
        Assert.False(_engine.Refers(new NodeHeartbeat(t, Some.Node("i-other", "p4d.24xlarge", 8))));
        Assert.False(_engine.Refers(new NodeStopped(t, "i-other")));
        Assert.False(_engine.Refers(new CapacityChanged(t, "i-other", CapacityType.Spot)));
        Assert.True(_engine.Refers(new PriceChanged(t, "aws", "us-east-1", "", "never-seen.xlarge", CapacityType.Spot, 1m)));
        // A spot price matters while it is the one in force; once a later one replaces it, it no longer does.
        var first = new PriceChanged(t, "aws", "us-east-1", "us-east-1a", "p4d.24xlarge", CapacityType.Spot, 9.5m);
        _engine.Apply(first);
        Assert.True(_engine.Refers(first));
        var second = first with { Time = t.AddMinutes(1), PricePerHour = 10.25m };
        _engine.Apply(second);
        Assert.False(_engine.Refers(first));
        Assert.True(_engine.Refers(second));
        foreach (var id in new[] { "w-running", "w-ended" }) // a stopped workload is held until it is forgotten
        {
            Assert.True(_engine.Refers(new WorkloadStarted(t, Some.Workload(id))));
            Assert.True(_engine.Refers(new WorkloadStopped(t, id)));
            Assert.True(_engine.Refers(new GpuAllocated(t, id, "i-other", 0, GpuShare.Whole)));
            Assert.True(_engine.Refers(new GpuReleased(t, id, "i-other", 0)));
            Assert.False(_engine.Refers(new WorkCounter(t, id, "tokens", 1))); // a total, replaced by the next
        }
        Assert.False(_engine.Refers(new WorkloadStarted(t, Some.Workload("w-never"))));
        Assert.False(_engine.Refers(new GpuAllocated(t, "w-never", "i-1", 0, GpuShare.Whole)));
        Assert.True(_engine.Refers(new StorageChanged(t, "vol-1", "w-never", "aws", "us-east-1", "gp3", 0)));
        Assert.False(_engine.Refers(new StorageChanged(t, "vol-other", "w-running", "aws", "us-east-1", "gp3", 1)));
        // Measurements and transfers are consumed when rated: nothing to rebuild from them.
        Assert.False(_engine.Refers(new GpuUtilization(t, "i-1", 0, 0.5)));
        Assert.False(_engine.Refers(new BytesTransferred(t, "w-running", "i-1", TransferKind.Internet, 1)));

        // Rated past 14:00, the workload that ended at 12:05 (over an hour before) is forgotten; the running one is not.
        for (var m = Some.At(12, 0); m < Some.At(14, 0); m = m.AddMinutes(1))
            _engine.RateMinute(m);
        Assert.False(_engine.Refers(new WorkloadStarted(t, Some.Workload("w-ended"))));
        Assert.False(_engine.Refers(new GpuAllocated(t, "w-ended", "i-1", 0, GpuShare.Whole)));
        Assert.True(_engine.Refers(new WorkloadStarted(t, Some.Workload("w-running"))));

        // A node stopped and rated past its stop is gone.
        _engine.Apply(new NodeStopped(Some.At(14, 0, 30), "i-1"));
        _engine.RateMinute(Some.At(14, 0));
        Assert.False(_engine.Refers(new NodeStarted(t, node)));
        Assert.False(_engine.Refers(new NodeStopped(t, "i-1")));
    }
}
