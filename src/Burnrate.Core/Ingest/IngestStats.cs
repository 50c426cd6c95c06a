namespace Burnrate.Ingest;

/// <summary>Counters of the ingest path, by input kind, for self-metrics (<c>GET /metrics</c>). Thread-safe.</summary>
public sealed class IngestStats
{
    private static readonly int s_kinds = Enum.GetValues<IngestKind>().Max(k => (int)k) + 1;
    private readonly long[] _requests = new long[s_kinds];
    private readonly long[] _samples = new long[s_kinds];
    private readonly long[] _events = new long[s_kinds];
    private readonly long[] _busy = new long[s_kinds];
    private readonly long[] _invalid = new long[s_kinds];
    private long _applyFailures;

    /// <summary>Inputs acknowledged, of <paramref name="kind"/>.</summary>
    public long Requests(IngestKind kind) => Interlocked.Read(ref _requests[(int)kind]);

    /// <summary>Samples acknowledged, of <paramref name="kind"/>.</summary>
    public long Samples(IngestKind kind) => Interlocked.Read(ref _samples[(int)kind]);

    /// <summary>Events acknowledged, of <paramref name="kind"/>.</summary>
    public long Events(IngestKind kind) => Interlocked.Read(ref _events[(int)kind]);

    /// <summary>Inputs refused with 503 because the queue was full.</summary>
    public long BusyRejections(IngestKind kind) => Interlocked.Read(ref _busy[(int)kind]);

    /// <summary>Inputs refused as invalid (400, 413, 415).</summary>
    public long InvalidRejections(IngestKind kind) => Interlocked.Read(ref _invalid[(int)kind]);

    /// <summary>Accepted inputs whose application failed (logged; should stay zero).</summary>
    public long ApplyFailures => Interlocked.Read(ref _applyFailures);

    /// <summary>Inputs replayed from the write-ahead log at start.</summary>
    public long Replayed { get; internal set; }

    internal void Accepted(IngestKind kind, int samples, int events)
    {
        Interlocked.Increment(ref _requests[(int)kind]);
        Interlocked.Add(ref _samples[(int)kind], samples);
        Interlocked.Add(ref _events[(int)kind], events);
    }

    internal void Busy(IngestKind kind) => Interlocked.Increment(ref _busy[(int)kind]);

    /// <summary>Counts an input refused as invalid.</summary>
    public void Invalid(IngestKind kind) => Interlocked.Increment(ref _invalid[(int)kind]);

    internal void ApplyFailed() => Interlocked.Increment(ref _applyFailures);
}
