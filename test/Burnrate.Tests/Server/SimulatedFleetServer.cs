using Burnrate.Alerting;
using Burnrate.Configuration;
using Burnrate.Demo;
using Burnrate.Pricing;
using Burnrate.Rating;
using Burnrate.Server;
using Burnrate.Simulation;
using Burnrate.Storage.DuckDb;
using Burnrate.Telemetry;
using Burnrate.Tests.Alerting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Burnrate.Tests.Server;

/// <summary>
/// A server fed by the simulator: the baseline fleet and S1's runaway job played for 40 minutes through the real rating
/// pipeline, with the default alert rules, then served on 127.0.0.1:0 with the clock stopped at the end. Shared by the
/// API tests of one class.
/// </summary>
public sealed class SimulatedFleetServer : IAsyncLifetime
{
    public const string Scenarios = "baseline+s1";

    public static readonly TimeSpan Span = TimeSpan.FromMinutes(40);

    private DuckDbCostStore? _store;
    private CostPipeline? _pipeline;
    private WebApplication? _app;

    public DateTimeOffset Start { get; } = ScenarioAlertPlayer.Monday;

    public DateTimeOffset End => Start + Span;

    public FakeTimeProvider Clock { get; } = new(ScenarioAlertPlayer.Monday);

    public PriceBook Book { get; private set; } = null!;

    public string Url { get; private set; } = "";

    public HttpClient Http { get; } = new();

    /// <summary>A simulator with the options the server's fleet was played with (so a test can replay the same events).</summary>
    public FleetSimulator NewSimulator() => new(ScenarioLibrary.Resolve(Scenarios), new FleetSimulatorOptions
    {
        Epoch = Start,
        IgnoreAnchors = true,
        BasePrice = FleetReplay.BasePrices(Book, Start),
    });

    public async ValueTask InitializeAsync()
    {
        var ct = TestContext.Current.CancellationToken;
        var config = new BurnrateConfig();
        var (book, rateCard) = PricingSetup.Load(config);
        Book = book;
        var options = new RatingOptions();
        _store = await DuckDbCostStore.OpenAsync(":memory:", ct: ct);
        var engine = new AlertEngine(AlertRules.Defaults, new RecordingAlertSink());
        _pipeline = new CostPipeline(new RatingEngine(book, rateCard, config.ToAttributionRules(), options), _store, options) { Alerts = engine };
        var replay = new FleetReplay(NewSimulator(), _pipeline, Clock);
        while (Clock.GetUtcNow() < End)
        {
            Clock.Advance(TimeSpan.FromMinutes(5));
            await replay.TickAsync(End, ct);
        }
        _app = BurnrateServer.Build(new BurnrateServerOptions
        {
            Listen = "127.0.0.1:0",
            Store = _store,
            Time = Clock,
            ConfigureServices = s => s.AddSingleton(_pipeline).AddSingleton(engine),
        });
        await _app.StartAsync(ct);
        Url = _app.Urls.First();
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        if (_app is not null)
        {
            await _app.StopAsync(CancellationToken.None);
            await _app.DisposeAsync();
        }
        _pipeline?.Dispose();
        if (_store is not null)
            await _store.DisposeAsync();
    }

    /// <summary>
    /// What the simulator says is running at <paramref name="at"/>, tallied from its events alone (not the engine):
    /// per node its spec and capacity, per (node, GPU) the workloads holding it.
    /// </summary>
    public (Dictionary<string, (Inventory.NodeSpec Spec, CapacityType Capacity)> Nodes, Dictionary<(string Node, int Gpu), HashSet<string>> Held) Reference(DateTimeOffset at)
    {
        var nodes = new Dictionary<string, (Inventory.NodeSpec Spec, CapacityType Capacity)>(StringComparer.Ordinal);
        var held = new Dictionary<(string Node, int Gpu), HashSet<string>>();
        foreach (var e in NewSimulator().AdvanceTo(at).Where(e => e.Time <= at).OrderBy(e => e.Time))
        {
            switch (e)
            {
                case NodeStarted s:
                    nodes[s.Node.Id] = (s.Node, s.Node.Capacity);
                    break;
                case NodeStopped s:
                    nodes.Remove(s.NodeId);
                    foreach (var key in held.Keys.Where(k => k.Node == s.NodeId).ToList())
                        held.Remove(key);
                    break;
                case CapacityChanged c when nodes.TryGetValue(c.NodeId, out var n):
                    nodes[c.NodeId] = (n.Spec, c.Capacity);
                    break;
                case GpuAllocated a:
                    if (!held.TryGetValue((a.NodeId, a.GpuIndex), out var set))
                        held[(a.NodeId, a.GpuIndex)] = set = new HashSet<string>(StringComparer.Ordinal);
                    set.Add(a.WorkloadId);
                    break;
                case GpuReleased r when held.TryGetValue((r.NodeId, r.GpuIndex), out var holders):
                    holders.Remove(r.WorkloadId);
                    break;
                case WorkloadStopped w:
                    foreach (var set2 in held.Values)
                        set2.Remove(w.WorkloadId);
                    break;
            }
        }
        return (nodes, held);
    }
}
