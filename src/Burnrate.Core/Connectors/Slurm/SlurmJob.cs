namespace Burnrate.Connectors.Slurm;

/// <summary>
/// One Slurm job allocation as Burnrate needs it, whatever the source (<c>squeue --json</c>, <c>sacct --json</c> of
/// any dialect, <c>sacct -P</c>): who, where, when, and how many GPUs. Steps are not jobs: they run inside the
/// allocation, which is what is billed, so their ids are kept in <see cref="Steps"/>.
/// </summary>
/// <param name="JobId">The id users see: <c>4242</c>, or <c>7_2</c> for task 2 of array 7.</param>
/// <param name="RawId">Slurm's own id of this allocation (an array task's is its own number).</param>
/// <param name="ArrayJobId">The array's id, or 0 when not an array task.</param>
/// <param name="ArrayTaskId">The task index within the array, or null.</param>
/// <param name="Name">The job name.</param>
/// <param name="User">The user name.</param>
/// <param name="Account">The account charged.</param>
/// <param name="Partition">The partition.</param>
/// <param name="Cluster">The cluster, or empty when the source does not say.</param>
/// <param name="State">The state, upper case, first word (<c>RUNNING</c>, <c>COMPLETED</c>, <c>CANCELLED</c>, ...).</param>
/// <param name="Submit">When submitted; null when unknown.</param>
/// <param name="Start">When it started running; null while it has not.</param>
/// <param name="End">When it ended; null while it runs (squeue's expected end is not an end).</param>
/// <param name="Nodes">The nodes of the allocation, expanded from the host list.</param>
/// <param name="Gpus">GPUs allocated in all (<c>gres/gpu</c> in the allocated TRES).</param>
/// <param name="GpuIndexes">Per node, the GPU indexes held when the source says (squeue's <c>gres_detail</c>); else empty.</param>
/// <param name="GpuType">The GPU type from the TRES or GRES (<c>a100</c>), or empty.</param>
/// <param name="Steps">Step ids (<c>batch</c>, <c>0</c>, ...), when the source lists them.</param>
/// <param name="Cpus">CPUs allocated in all (<c>cpu</c> in the allocated TRES), 0 when the source does not say.</param>
public sealed record SlurmJob(
    string JobId,
    long RawId,
    long ArrayJobId,
    long? ArrayTaskId,
    string Name,
    string User,
    string Account,
    string Partition,
    string Cluster,
    string State,
    DateTimeOffset? Submit,
    DateTimeOffset? Start,
    DateTimeOffset? End,
    IReadOnlyList<string> Nodes,
    int Gpus,
    IReadOnlyDictionary<string, IReadOnlyList<int>> GpuIndexes,
    string GpuType,
    IReadOnlyList<string> Steps,
    int Cpus = 0)
{
    /// <summary>States in which a job is still on its nodes.</summary>
    public bool IsActive => State is "RUNNING" or "COMPLETING" or "SUSPENDED" or "CONFIGURING" or "STOPPED" or "RESIZING" or "SIGNALING" or "STAGE_OUT";

    /// <summary>Whether the job ran on nodes at all (a job cancelled while pending never did).</summary>
    public bool Ran => Start is not null && Nodes.Count > 0;

    /// <summary>The CPUs on <paramref name="node"/>: an even share of <see cref="Cpus"/>, the first nodes taking the remainder.</summary>
    public int CpusOn(string node)
    {
        var i = 0;
        for (; i < Nodes.Count; i++)
        {
            if (Nodes[i] == node)
                break;
        }
        return Nodes.Count == 0 || i == Nodes.Count ? 0 : Cpus / Nodes.Count + (i < Cpus % Nodes.Count ? 1 : 0);
    }

    /// <summary>The GPUs on <paramref name="node"/>: the indexes' count when known, else an even share of <see cref="Gpus"/>.</summary>
    public int GpusOn(string node)
    {
        if (GpuIndexes.TryGetValue(node, out var indexes))
            return indexes.Count;
        if (Nodes.Count == 0)
            return 0;
        var i = 0;
        for (; i < Nodes.Count; i++)
        {
            if (Nodes[i] == node)
                break;
        }
        // Slurm spreads a job's GPUs over its nodes; without gres_detail the first nodes take the remainder.
        return Gpus / Nodes.Count + (i < Gpus % Nodes.Count ? 1 : 0);
    }
}

/// <summary>The jobs one source returned, and which dialect it spoke.</summary>
/// <param name="Jobs">The jobs, in the order the source listed them.</param>
/// <param name="Dialect">The plugin or data parser (<c>openapi/dbv0.0.38</c>, <c>data_parser/v0.0.40</c>, <c>sacct -P</c>).</param>
/// <param name="SlurmVersion">Slurm's release (<c>22.05.8</c>), or empty.</param>
public sealed record SlurmJobList(IReadOnlyList<SlurmJob> Jobs, string Dialect, string SlurmVersion);

/// <summary>Slurm output that cannot be read; the message says what and where.</summary>
public sealed class SlurmFormatException : Exception
{
    public SlurmFormatException(string message) : base(message) { }
    public SlurmFormatException(string message, Exception inner) : base(message, inner) { }
    public SlurmFormatException() { }
}
