namespace Burnrate.Attribution;

/// <summary>
/// Who a dollar belongs to: a job, run, deployment or cluster, and its people.
/// </summary>
/// <param name="Id">Unique, stable id, conventionally <c>{orchestrator}:{native id}</c> (e.g. <c>slurm:4242</c>, <c>skypilot:train-llama</c>, <c>k8s:ml/vllm-7b</c>).</param>
/// <param name="Orchestrator"><c>skypilot</c>, <c>metaflow</c>, <c>slurm</c>, <c>kubernetes</c>, or <c>manual</c>.</param>
/// <param name="Name">Human name (job name, flow/run/step, deployment).</param>
/// <param name="User">The person who launched it, or empty.</param>
/// <param name="Team">Team, or empty until attribution rules derive it.</param>
/// <param name="Project">Project, or empty until attribution rules derive it.</param>
/// <param name="Model">Model (name or version) served or trained, or empty.</param>
/// <param name="Labels">Free labels (pod labels, SkyPilot tags, Metaflow tags, Slurm account and partition).</param>
public sealed record WorkloadInfo(
    string Id,
    string Orchestrator,
    string Name,
    string User = "",
    string Team = "",
    string Project = "",
    string Model = "",
    IReadOnlyDictionary<string, string>? Labels = null)
{
    /// <summary>The workload id under which unallocated capacity (idle) is booked.</summary>
    public const string IdleId = "";
}
