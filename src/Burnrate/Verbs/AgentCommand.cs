using System.CommandLine;
using System.Globalization;
using System.Text.RegularExpressions;
using Burnrate.Agent;
using Burnrate.Pricing;
using Microsoft.Extensions.Logging;

namespace Burnrate.Cli.Verbs;

/// <summary>
/// <c>burnrate agent</c>: the node agent for hosts without DCGM. Parses the options into a <see cref="NodeAgent"/> and
/// runs it: one round with <c>--once</c>, else every <c>--interval</c> until Ctrl+C.
/// </summary>
internal static partial class AgentCommand
{
    public static Command Create(CliServices services)
    {
        var server = new Option<string>("--server")
        {
            Description = "The Burnrate server (e.g. http://10.0.0.5:9840); samples go to URL/api/v1/write. A failed push (5xx, no answer) is retried with backoff and unsent rounds wait, oldest first, up to an hour; a 4xx answer is logged and the round dropped (Prometheus semantics)",
            HelpName = "URL",
            Required = true,
        };
        var interval = new Option<string>("--interval")
        {
            Description = "How often nvidia-smi is read and a round pushed (at least 1s)",
            HelpName = "D",
            DefaultValueFactory = _ => "15s",
        };
        var node = new Option<string?>("--node")
        {
            Description = "The node name the GPUs are reported under (their Hostname label) [default: this host's name]",
            HelpName = "NAME",
        };
        var provider = new Option<string?>("--provider")
        {
            Description = "Cloud or GPU provider of this machine, as in the price book: aws, gcp, azure, lambda, nebius, runpod, coreweave, ... [default: the server's default provider]",
            HelpName = "NAME",
        };
        var region = new Option<string?>("--region") { Description = "Provider region (e.g. us-east-1)", HelpName = "R" };
        var zone = new Option<string?>("--zone") { Description = "Availability zone (e.g. us-east-1a)", HelpName = "Z" };
        var instanceType = new Option<string?>("--instance-type")
        {
            Description = "Provider instance type, the price book key (e.g. p4d.24xlarge); without it the server knows the node and its GPUs but cannot price them",
            HelpName = "TYPE",
        };
        var capacity = new Option<string?>("--capacity")
        {
            Description = "on-demand, spot or reserved (also on_demand, preemptible, committed, ...) [default: on-demand]",
            HelpName = "TYPE",
        };
        var labels = new Option<string[]>("--label")
        {
            Description = "A node label, repeatable: team, project and user own the node's idle cost, cluster names its cluster; any other name is kept on the node (e.g. --label team=research --label cluster=lab)",
            HelpName = "K=V",
            DefaultValueFactory = _ => [],
        };
        var nvidiaSmi = new Option<string>("--nvidia-smi")
        {
            Description = "The nvidia-smi executable (a path, or a name on PATH), run as 'nvidia-smi --query-gpu=index,uuid,name,... --format=csv,noheader,nounits'. Missing or failing on the first round: exit 1; later failures are logged and the node's info is still sent",
            HelpName = "PATH",
            DefaultValueFactory = _ => NvidiaSmi.DefaultPath,
        };
        var once = new Option<bool>("--once")
        {
            Description = "Read and push one round, then exit 0 (for cron and tests); exit 1 when the server rejected it or could not be reached within --interval",
        };

        var apiKeyEnv = ApiKeyOption.Create();
        var command = new Command("agent", "Node agent for hosts without DCGM: every --interval, read nvidia-smi and push the GPUs (as DCGM exporter series) and the node (burnrate_node_info: provider, region, instance type, capacity, labels; so the server prices it) to a Burnrate server by Prometheus remote write 1.0; runs until Ctrl+C")
        {
            server, apiKeyEnv, interval, node, provider, region, zone, instanceType, capacity, labels, nvidiaSmi, once,
        };
        BurnrateCli.SetGuardedAction(command, services, async (parse, cancellationToken) =>
        {
            var serverUri = ReportCommand.ParseServer(parse.GetValue(server)!);
            var every = ParseInterval(parse.GetValue(interval)!);
            var nodeName = parse.GetValue(node) ?? System.Net.Dns.GetHostName();
            if (string.IsNullOrWhiteSpace(nodeName))
                throw new CliUsageException("--node: the node name is empty");
            var agentNode = new AgentNode(
                nodeName.Trim(),
                (parse.GetValue(provider) ?? "").Trim().ToLowerInvariant(),
                (parse.GetValue(region) ?? "").Trim(),
                (parse.GetValue(zone) ?? "").Trim(),
                (parse.GetValue(instanceType) ?? "").Trim(),
                ParseCapacity(parse.GetValue(capacity)),
                ParseLabels(parse.GetValue(labels) ?? []));
            // --once (cron) reports success as its one stdout line; stderr carries only what went wrong.
            var logger = new StderrLogger(services.Error, parse.GetValue(once) ? LogLevel.Warning : LogLevel.Information);
            if (every > TimeSpan.FromMinutes(1))
                await services.Error.WriteLineAsync("warning: --interval above 1m: the server rates a minute rating.grace (30 s by default) after it ends, so minutes between rounds may go unbilled").ConfigureAwait(false);
            if (agentNode.InstanceType.Length == 0)
                await services.Error.WriteLineAsync("warning: no --instance-type: the server will know this node and its GPUs but cannot price them").ConfigureAwait(false);

            using var http = services.CreateHttpClient();
            // An ingest key, when the server has keys (docs/security.md); every push carries it.
            if (ApiKeyOption.Read(services, parse.GetValue(apiKeyEnv)!) is { } apiKey)
                http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", apiKey);
            var agent = new NodeAgent(
                new NodeAgentOptions
                {
                    Server = serverUri,
                    Node = agentNode,
                    Interval = every,
                    NvidiaSmiPath = parse.GetValue(nvidiaSmi)!,
                    UserAgent = "burnrate-agent/" + (typeof(AgentCommand).Assembly.GetName().Version?.ToString(3) ?? "0"),
                },
                http,
                services.Time,
                logger);
            if (parse.GetValue(once))
            {
                var round = await agent.RunOnceAsync(cancellationToken).ConfigureAwait(false);
                await services.Out.WriteLineAsync(
                    $"pushed {round.Gpus} GPUs ({round.Samples.Count} samples) of node {agentNode.Name} to {agent.Endpoint}").ConfigureAwait(false);
                return ExitCodes.Ok;
            }
            await services.Out.WriteLineAsync(
                $"burnrate agent: node {agentNode.Name}, pushing every {every.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)} s to {agent.Endpoint}; Ctrl+C stops").ConfigureAwait(false);
            await agent.RunAsync(cancellationToken).ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static TimeSpan ParseInterval(string text) =>
        Reporting.TimeExpression.TryParseDuration(text, out var value) && value >= TimeSpan.FromSeconds(1)
            ? value
            : throw new CliUsageException($"--interval: '{text}' is not a duration of at least 1s (e.g. 15s, 1m)");

    private static CapacityType? ParseCapacity(string? text)
    {
        if (text is null)
            return null;
        return CapacityTypes.TryParse(text, out var value)
            ? value
            : throw new CliUsageException($"--capacity: '{text}' is not a capacity type; use on-demand, spot or reserved");
    }

    private static List<KeyValuePair<string, string>> ParseLabels(string[] items)
    {
        var result = new List<KeyValuePair<string, string>>();
        foreach (var item in items)
        {
            var eq = item.IndexOf('=', StringComparison.Ordinal);
            var name = eq < 0 ? item : item[..eq].Trim();
            var value = eq < 0 ? "" : item[(eq + 1)..].Trim();
            if (eq < 0 || value.Length == 0)
                throw new CliUsageException($"--label: '{item}' is not NAME=VALUE with a value (e.g. team=research)");
            if (!LabelName().IsMatch(name) || name.StartsWith("__", StringComparison.Ordinal))
                throw new CliUsageException($"--label: '{name}' is not a label name (letters, digits and '_', not starting with a digit or '__')");
            if (AgentSeries.ReservedLabels.Contains(name))
                throw new CliUsageException($"--label: '{name}' is set by its own option or by the agent; reserved: {string.Join(", ", AgentSeries.ReservedLabels)}");
            if (result.Exists(l => l.Key == name))
                throw new CliUsageException($"--label: '{name}' is given twice");
            result.Add(new(name, value));
        }
        return result;
    }

    // Prometheus label names (telemetry-formats.md §1.1).
    [GeneratedRegex("^[a-zA-Z_][a-zA-Z0-9_]*$")]
    private static partial Regex LabelName();
}
