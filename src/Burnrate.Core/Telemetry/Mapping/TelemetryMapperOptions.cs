namespace Burnrate.Telemetry.Mapping;

/// <summary>Settings of <see cref="TelemetryMapper"/>; docs/metrics.md describes each rule they change.</summary>
public sealed class TelemetryMapperOptions
{
    /// <summary>
    /// Metric names read as a cumulative training step count of the pod that exposes them ("steps"). There is no standard
    /// metric for training progress (telemetry-formats.md §5.2), so these are a convention that can be changed.
    /// </summary>
    public IReadOnlyList<string> StepMetrics { get; init; } = ["training_steps_total", "train_step", "training_step", "trainer_global_step"];

    /// <summary>Metric names read as a cumulative count of training samples of the pod that exposes them ("samples").</summary>
    public IReadOnlyList<string> SampleMetrics { get; init; } = ["training_samples_total", "train_samples_total", "train_samples"];

    /// <summary>The provider of a node whose labels do not name one (lower-case, as in the price book).</summary>
    public string DefaultProvider { get; init; } = "aws";

    /// <summary>
    /// How a pod's replicas of a time-sliced or MPS GPU (node label <c>nvidia.com/gpu.replicas</c> &gt; 1) are charged:
    /// true books <c>requested replicas / replicas</c> of the GPU to the pod (OpenCost-like); false books nothing to the
    /// pod, so the whole GPU stays idle cost of the node until usage-weighted splitting exists.
    /// </summary>
    public bool TimeSlicedByAllocation { get; init; } = true;

    /// <summary>
    /// How long a pod may be missing from <c>kube_pod_info</c> (measured on kube-state-metrics' own sample times) before
    /// its GPUs are released and, when it was the workload's last pod, the workload stops.
    /// </summary>
    public TimeSpan PodStaleness { get; init; } = TimeSpan.FromMinutes(2);
}
