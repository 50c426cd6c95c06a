namespace Burnrate.LoadGen;

/// <summary>How the fleet's series are cut into requests and spread over the connections.</summary>
internal enum Layout
{
    /// <summary>
    /// Whole nodes per request (a node's kube-state-metrics, pod and GPU series together, as a per-node agent sends
    /// them), requests dealt to the connections in turn. The mapper's documented precondition holds: a node's labels
    /// and GPU capacity arrive in one request (docs/metrics.md, "Heartbeats").
    /// </summary>
    Node,

    /// <summary>
    /// As Prometheus' queue manager shards: each series goes to connection hash(labels) mod connections, in scrape
    /// order (kube-state-metrics families first, then each node's dcgm-exporter), cut into requests of
    /// <c>--batch</c> samples. A node's labels and capacity usually travel in different requests.
    /// </summary>
    Sharded,
}

/// <summary>The requests each connection sends every round, in order. A series belongs to exactly one request.</summary>
internal sealed class LoadPlan
{
    private LoadPlan(RequestBatch[][] perConnection) => PerConnection = perConnection;

    public RequestBatch[][] PerConnection { get; }

    public int Requests => PerConnection.Sum(c => c.Length);

    public int SamplesPerRound => PerConnection.Sum(c => c.Sum(b => b.Samples));

    public long RawBytesPerRound => PerConnection.Sum(c => c.Sum(b => (long)b.RawBytes));

    public static LoadPlan Build(Fleet fleet, Layout layout, int connections, int batch)
    {
        var lists = layout == Layout.Node ? ByNode(fleet, batch) : Sharded(fleet, connections, batch);
        var perConnection = new List<RequestBatch>[connections];
        for (var c = 0; c < connections; c++)
            perConnection[c] = [];
        for (var i = 0; i < lists.Count; i++)
            perConnection[layout == Layout.Node ? i % connections : lists[i].Shard].Add(RequestBatch.Encode(fleet, lists[i].Series));
        return new LoadPlan([.. perConnection.Select(c => c.ToArray())]);
    }

    /// <summary>Whole node groups packed into requests of at most <paramref name="batch"/> samples.</summary>
    private static List<(int Shard, List<int> Series)> ByNode(Fleet fleet, int batch)
    {
        var result = new List<(int, List<int>)>();
        var current = new List<int>(batch);
        var starts = fleet.NodeGroupStarts;
        for (var n = 0; n < starts.Count; n++)
        {
            var end = n + 1 < starts.Count ? starts[n + 1] : fleet.Series.Count;
            var size = end - starts[n];
            if (current.Count > 0 && current.Count + size > batch)
            {
                result.Add((0, current));
                current = new List<int>(batch);
            }
            for (var s = starts[n]; s < end; s++)
            {
                current.Add(s);
                if (current.Count == batch)
                {
                    result.Add((0, current));
                    current = new List<int>(batch);
                }
            }
        }
        if (current.Count > 0)
            result.Add((0, current));
        return result;
    }

    private static List<(int Shard, List<int> Series)> Sharded(Fleet fleet, int connections, int batch)
    {
        // Scrape order: kube-state-metrics prints family by family (all nodes' kube_node_labels, then ...), each
        // dcgm-exporter its own node.
        var ksm = new List<int>();
        var dcgm = new List<int>();
        for (var i = 0; i < fleet.Series.Count; i++)
            (NameOf(fleet, i).StartsWith("DCGM_", StringComparison.Ordinal) ? dcgm : ksm).Add(i);
        ksm.Sort((a, b) => string.CompareOrdinal(NameOf(fleet, a), NameOf(fleet, b)) is var c && c != 0 ? c : a.CompareTo(b));
        var shards = new List<int>[connections];
        for (var s = 0; s < connections; s++)
            shards[s] = [];
        foreach (var i in ksm.Concat(dcgm))
            shards[(int)(Hash(fleet.Series[i]) % (uint)connections)].Add(i);
        var result = new List<(int, List<int>)>();
        for (var s = 0; s < connections; s++)
        {
            foreach (var chunk in shards[s].Chunk(batch))
                result.Add((s, [.. chunk]));
        }
        return result;
    }

    private static string NameOf(Fleet fleet, int index)
    {
        foreach (var label in fleet.Series[index].Labels)
        {
            if (label.Name == Telemetry.MetricSample.NameLabel)
                return label.Value;
        }
        return "";
    }

    /// <summary>FNV-1a over the label names and values: stable across runs, like Prometheus' series hash.</summary>
    private static uint Hash(FleetSeries series)
    {
        var hash = 2166136261u;
        foreach (var label in series.Labels)
        {
            foreach (var ch in label.Name)
                hash = (hash ^ ch) * 16777619u;
            hash = (hash ^ 0xFF) * 16777619u;
            foreach (var ch in label.Value)
                hash = (hash ^ ch) * 16777619u;
            hash = (hash ^ 0xFE) * 16777619u;
        }
        return hash;
    }
}
