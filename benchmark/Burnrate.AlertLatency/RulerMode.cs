using System.Diagnostics;
using System.Globalization;

namespace Burnrate.AlertLatency;

/// <summary>
/// Alert latency with the ruler (<c>serve --role ruler</c>, docs/scale-out.md): two ingesters and a ruler on one
/// ClickHouse, beside a single <c>serve</c> on DuckDB that gets the same input. Every <c>--every</c> a new job starts
/// with 4 GPUs on a node behind each ingester ($10.98/h each, $21.96/h in all, against a spend_rate rule above $20/h),
/// so only its total crosses the threshold: only the ruler, reading the shared ledger, can see it. Each job is stopped
/// once the ruler's alert for it has arrived.
/// </summary>
internal static class RulerMode
{
    public static async Task<int> RunAsync(Program.Options options)
    {
        var dir = Directory.CreateTempSubdirectory("burnrate-ruler-latency-").FullName;
        using var receiver = new Program.Receiver(Program.FreePort());
        int single = Program.FreePort(), east = Program.FreePort(), west = Program.FreePort(), ruler = Program.FreePort();
        var database = "burnrate_latency_" + Guid.NewGuid().ToString("N")[..8];
        const string Rule = """
            rules:
              - name: bench-runaway
                kind: spend_rate
                above_usd_per_hour: 20
            """;
        await File.WriteAllTextAsync(Path.Combine(dir, "single.yaml"), $"""
            {Rule}
            notify:
              - webhook: {receiver.Url}single
            """);
        await File.WriteAllTextAsync(Path.Combine(dir, "scale.yaml"), string.Create(CultureInfo.InvariantCulture, $"""
            storage:
              store: clickhouse
              clickhouse:
                urls: [{options.ClickHouse}]
                database: {database}
            rating:
              grace: {options.Grace.TotalSeconds}s
            ruler:
              interval: 5s
              settle: {options.Settle.TotalSeconds}s
            {Rule}
            notify:
              - webhook: {receiver.Url}ruler
            """));
        var processes = new List<Process>();
        Process Serve(string name, int port, string config, string role) => Program.Start(options.Burnrate,
            $"serve --role {role} --listen 127.0.0.1:{port} --data {dir}/{name} --config {dir}/{config}", Path.Combine(dir, name + ".log"));
        try
        {
            processes.Add(Serve("single", single, "single.yaml", "all"));
            processes.Add(Serve("east", east, "scale.yaml", "ingest"));
            processes.Add(Serve("west", west, "scale.yaml", "ingest"));
            processes.Add(Serve("ruler", ruler, "scale.yaml", "ruler"));
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            foreach (var port in new[] { single, east, west, ruler })
                await Program.WaitReadyAsync(http, $"http://127.0.0.1:{port}/healthz");

            var singleMs = new List<double>();
            var rulerMs = new List<double>();
            var settledMs = new List<double>();
            var timeout = options.Grace + options.Settle + TimeSpan.FromMinutes(3);
            async Task PostAsync(int port, object[] events)
            {
                using var response = await http.PostAsync($"http://127.0.0.1:{port}/api/v1/events", Program.Json(events));
                response.EnsureSuccessStatusCode();
            }
            async Task TrialAsync(int trial)
            {
                var id = $"bench:{trial}";
                var now = DateTimeOffset.UtcNow;
                var sent = Stopwatch.GetTimestamp();
                await PostAsync(east, Program.Launch(id, now, "east-" + id, gpus: 4));
                await PostAsync(west, Program.Launch(id, now, "west-" + id, gpus: 4));
                await PostAsync(single, Program.Launch(id, now, "east-" + id, gpus: 4));
                await PostAsync(single, Program.Launch(id, now, "west-" + id, gpus: 4));
                var atSingle = receiver.WaitAsync("single", id, timeout);
                var atRuler = receiver.WaitAsync("ruler", id, timeout);
                var (s, r) = (await atSingle, await atRuler);
                lock (rulerMs)
                {
                    if (s is not null)
                        singleMs.Add(Stopwatch.GetElapsedTime(sent, s.At).TotalMilliseconds);
                    if (r is not null)
                    {
                        rulerMs.Add(Stopwatch.GetElapsedTime(sent, r.At).TotalMilliseconds);
                        if (r.Evidence is { } evidence)
                            settledMs.Add((r.Utc - evidence).TotalMilliseconds);
                    }
                }
                var end = DateTimeOffset.UtcNow;
                await PostAsync(east, Program.Stop(id, end, "east-" + id));
                await PostAsync(west, Program.Stop(id, end, "west-" + id));
                await PostAsync(single, Program.Stop(id, end, "east-" + id));
                await PostAsync(single, Program.Stop(id, end, "west-" + id));
            }
            var trials = new List<Task>();
            for (var trial = 0; trial < options.Trials; trial++)
            {
                trials.Add(TrialAsync(trial));
                await Task.Delay(options.Every);
            }
            await Task.WhenAll(trials);

            var cores = Environment.ProcessorCount;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"Alert latency, ruler mode: {options.Trials} jobs, one every {options.Every.TotalSeconds}s, each above the rule only in total; ingesters rating.grace {options.Grace.TotalSeconds}s, ruler.settle {options.Settle.TotalSeconds}s, ruler.interval 5s; {cores} cores"));
            Console.WriteLine();
            Console.WriteLine("| path | received | p50 ms | p90 ms | p99 ms | max ms |");
            Console.WriteLine("|---|---:|---:|---:|---:|---:|");
            Program.Row("single process (DuckDB), launch posted → webhook", singleMs, options.Trials);
            Program.Row("2 ingesters + ruler (ClickHouse), launch posted → webhook", rulerMs, options.Trials);
            Program.Row("2 ingesters + ruler (ClickHouse), end of the evidence minute → webhook", settledMs, options.Trials);
            var firing = receiver.Firing.GetValueOrDefault("ruler");
            Console.WriteLine();
            Console.WriteLine($"firing notifications from the ruler: {firing} for {options.Trials} jobs; from the ingesters: none possible (no delivery in role ingest)");
            return rulerMs.Count == options.Trials && singleMs.Count == options.Trials && firing == options.Trials ? 0 : 3;
        }
        finally
        {
            foreach (var process in processes)
                Program.Stop(process);
            if (!options.Keep)
                Directory.Delete(dir, recursive: true);
            else
                await Console.Error.WriteLineAsync("kept " + dir);
        }
    }
}
