using Burnrate.Pricing;

namespace Burnrate.Inventory;

/// <summary>
/// A billed machine: a cloud instance, a Kubernetes node or an on-prem server.
/// </summary>
/// <param name="Id">Stable identity: the cloud instance id where known (matches FOCUS <c>ResourceId</c>), else the node name.</param>
/// <param name="Provider">Lower-case provider (see <see cref="InstancePrice.Provider"/>).</param>
/// <param name="Region">Provider region.</param>
/// <param name="Zone">Availability zone, or empty.</param>
/// <param name="InstanceType">Provider instance type, the price book key.</param>
/// <param name="Capacity">Capacity type at start; later changes come as events.</param>
/// <param name="GpuCount">GPUs on the node.</param>
/// <param name="GpuModel">GPU model, e.g. <c>H100</c>.</param>
/// <param name="Cluster">The cluster it belongs to (SkyPilot cluster, Kubernetes cluster, Slurm cluster), or empty.</param>
/// <param name="Account">Billing account or project, or empty.</param>
/// <param name="Labels">Free labels; <c>team</c>, <c>project</c> and <c>user</c> here name who owns its idle cost.</param>
public sealed record NodeSpec(
    string Id,
    string Provider,
    string Region,
    string Zone,
    string InstanceType,
    CapacityType Capacity,
    int GpuCount,
    string GpuModel,
    string Cluster = "",
    string Account = "",
    IReadOnlyDictionary<string, string>? Labels = null);
