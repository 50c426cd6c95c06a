using Burnrate.Cli;
using Burnrate.Pricing;
using Burnrate.Rating;
using Burnrate.Server;
using Burnrate.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Time.Testing;

namespace Burnrate.Tests.Cli;

/// <summary>A ledger that answers every query with fixed rows and remembers the queries.</summary>
internal sealed class FakeCostStore(params CostReportRow[] rows) : ICostStore
{
    public List<CostQuery> Queries { get; } = [];

    public bool Disposed { get; private set; }

    public Task<IReadOnlyList<CostReportRow>> QueryCostsAsync(CostQuery query, CancellationToken cancellationToken = default)
    {
        lock (Queries)
            Queries.Add(query);
        return Task.FromResult<IReadOnlyList<CostReportRow>>(rows);
    }

    public Task MigrateAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;
    public Task WriteAsync(IReadOnlyList<CostLine> lines, CancellationToken cancellationToken = default) => throw new NotSupportedException();
    public Task UpsertWorkloadsAsync(IReadOnlyList<WorkloadRecord> workloads, CancellationToken cancellationToken = default) => throw new NotSupportedException();
    public Task WriteWorkAsync(IReadOnlyList<WorkMinute> work, CancellationToken cancellationToken = default) => throw new NotSupportedException();
    public Task<IReadOnlyList<WorkloadRecord>> GetWorkloadsAsync(IReadOnlyCollection<string>? ids = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();
    public Task<IReadOnlyList<Burnrate.Rating.CostLine>> GetLinesAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default) => throw new NotSupportedException();
    public Task<IReadOnlyList<WorkTotal>> GetWorkTotalsAsync(DateTimeOffset from, DateTimeOffset to, IReadOnlyCollection<string>? workloadIds = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public Task<(DateTimeOffset First, DateTimeOffset Last)?> GetLedgerSpanAsync(CancellationToken cancellationToken = default) => throw new NotSupportedException();
    public Task WriteBillingAsync(IReadOnlyList<Burnrate.Billing.BillingLine> lines, string sourceFile, CancellationToken cancellationToken = default) => throw new NotSupportedException();
    public Task<IReadOnlyList<Burnrate.Billing.BillingLine>> QueryBillingAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public ValueTask DisposeAsync()
    {
        Disposed = true;
        return ValueTask.CompletedTask;
    }
}

/// <summary>A price book over a fixed list: the latest entry per key with EffectiveFrom at or before the instant.</summary>
internal sealed class FakePriceBook(params InstancePrice[] prices) : IPriceBook
{
    private readonly List<InstancePrice> _prices = [.. prices];

    public DateTimeOffset? LastAt { get; private set; }

    public IReadOnlyList<InstancePrice> InForce(DateTimeOffset at)
    {
        LastAt = at;
        return _prices
            .Where(p => p.EffectiveFrom <= at)
            .GroupBy(p => (p.Provider, p.Region, p.Zone, p.InstanceType, p.Capacity))
            .Select(g => g.MaxBy(p => p.EffectiveFrom)!)
            .ToArray();
    }

    public InstancePrice? Find(string provider, string region, string zone, string instanceType, CapacityType capacity, DateTimeOffset at) =>
        InForce(at).FirstOrDefault(p => p.Provider == provider && p.Region == region && p.Zone == zone && p.InstanceType == instanceType && p.Capacity == capacity);

    public DateTimeOffset? NextChange(string provider, string region, string zone, string instanceType, CapacityType capacity, DateTimeOffset after, DateTimeOffset before) => null;

    public void Add(InstancePrice price) => _prices.Add(price);
}

/// <summary>The CLI wired to fakes, a fixed clock, a temporary data directory and captured output.</summary>
internal sealed class CliHarness : IDisposable
{
    public static readonly DateTimeOffset Now = new(2025, 6, 15, 12, 0, 0, TimeSpan.Zero);

    public CliHarness(ICostStore? store = null, IPriceBook? prices = null, bool withLedger = true)
    {
        Store = store ?? new FakeCostStore();
        DataDirectory = Directory.CreateTempSubdirectory("burnrate-cli-").FullName;
        if (withLedger)
            File.WriteAllBytes(Path.Combine(DataDirectory, CliServices.LedgerFileName), []);
        Services = new CliServices
        {
            OpenStore = (dir, _) =>
            {
                OpenedDirectory = dir;
                return Task.FromResult(Store);
            },
            LoadPriceBook = _ => prices ?? new FakePriceBook(),
            Time = new FakeTimeProvider(Now),
            Out = Output,
            Error = Errors,
            In = Input,
            // Never the real environment: a BURNRATE_API_KEY of the machine must not change what a test sees.
            GetEnvironmentVariable = name => Environment.GetValueOrDefault(name),
        };
    }

    /// <summary>The environment verbs see (empty unless a test sets a variable).</summary>
    public Dictionary<string, string> Environment { get; } = new(StringComparer.Ordinal);

    /// <summary>What verbs read from stdin: set <see cref="StdinReader.Text"/> before running.</summary>
    public StdinReader Input { get; } = new();

    public ICostStore Store { get; }
    public string DataDirectory { get; }
    public string? OpenedDirectory { get; private set; }
    public StringWriter Output { get; } = new();
    public StringWriter Errors { get; } = new();
    public CliServices Services { get; }

    /// <summary>Runs <c>burnrate ARGS</c>, adding <c>--data</c> for the temporary directory.</summary>
    public Task<int> RunAsync(params string[] args) =>
        BurnrateCli.InvokeAsync(Services, [.. args, "--data", DataDirectory], TestContext.Current.CancellationToken);

    public void Dispose()
    {
        Output.Dispose();
        Errors.Dispose();
        Input.Dispose();
        Directory.Delete(DataDirectory, recursive: true);
    }
}

/// <summary>A stdin whose text a test sets before running a verb.</summary>
internal sealed class StdinReader : TextReader
{
    private StringReader _text = new("");

    public string Text { set => _text = new StringReader(value); }

    public override int Peek() => _text.Peek();

    public override int Read() => _text.Read();

    public override string? ReadLine() => _text.ReadLine();

    public override ValueTask<string?> ReadLineAsync(CancellationToken cancellationToken) => _text.ReadLineAsync(cancellationToken);
}

/// <summary>A real Burnrate server on a free loopback port.</summary>
internal sealed class RunningServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private RunningServer(WebApplication app, Uri address)
    {
        _app = app;
        Address = address;
    }

    public Uri Address { get; }

    public static async Task<RunningServer> StartAsync(ICostStore store)
    {
        var app = BurnrateServer.Build(new BurnrateServerOptions
        {
            Listen = "127.0.0.1:0",
            Store = store,
            Time = new FakeTimeProvider(CliHarness.Now),
        });
        await app.StartAsync(TestContext.Current.CancellationToken);
        var url = app.Urls.Single();
        Assert.StartsWith("http://127.0.0.1:", url, StringComparison.Ordinal);
        return new RunningServer(app, new Uri(url));
    }

    public HttpClient Client() => new() { BaseAddress = Address };

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>Test data.</summary>
internal static class Some
{
    public static CostReportRow Row(decimal cost, decimal idle = 0m, decimal gpuHours = 1m, DateTimeOffset? bucket = null, params string[] keys) =>
        new(keys, bucket, Money.FromDollars(cost), Money.FromDollars(idle), gpuHours * 3600m);

    public static InstancePrice Price(string provider, string region, string instanceType, string gpuModel, int gpus, decimal perHour, CapacityType capacity = CapacityType.OnDemand, string zone = "") =>
        new(provider, region, zone, instanceType, capacity, perHour, gpus == 0 ? 0m : perHour * 0.9m / gpus, gpus, gpuModel, 96, 768m,
            new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero), "builtin:" + provider);
}
