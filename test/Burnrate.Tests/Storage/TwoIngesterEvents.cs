using System.Globalization;
using System.Text;
using Burnrate.Ingest;
using Burnrate.Storage;

namespace Burnrate.Tests.Storage;

/// <summary>
/// The events of one workload (<c>job:w</c>, team research) whose GPUs report through two ingesters on one store, as
/// the ClickHouse ingester and ruler tests post them.
/// </summary>
internal static class TwoIngesterEvents
{
    /// <summary>One ingester over the shared store.</summary>
    public sealed record Instance(ICostStore Store, IngestPipeline Ingest);

    public static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    public static string Node(string id, DateTimeOffset at) => $$"""
        {"type": "node_started", "time": "{{Time(at)}}", "node": {"id": "{{id}}", "provider": "aws", "region": "us-east-1",
         "zone": "us-east-1a", "instance_type": "p4d.24xlarge", "capacity": "on-demand", "gpus": 8, "gpu_model": "A100"} }
        """;

    public static string Started(DateTimeOffset at) =>
        $$"""{"type": "workload_started", "time": "{{Time(at)}}", "workload": {"id": "job:w", "name": "w", "team": "research"} }""";

    public static string Gpus(string node, int first, int count, DateTimeOffset at) => string.Join(",\n", Enumerable.Range(first, count).Select(g =>
        $$"""{"type": "gpu_allocated", "time": "{{Time(at)}}", "workload_id": "job:w", "node_id": "{{node}}", "gpu_index": {{g}}}"""));

    /// <summary>Posts <paramref name="events"/> to <paramref name="instance"/>'s ingest queue, as the events endpoint would.</summary>
    public static void Post(Instance instance, DateTimeOffset at, IEnumerable<string> events)
    {
        var record = new IngestRecord(IngestKind.Events, at, "", Encoding.UTF8.GetBytes("[" + string.Join(",\n", events) + "]"));
        Assert.True(instance.Ingest.TryAccept(record, IngestDecoder.Decode(record)), "the queue refused an input");
    }
}
