using Burnrate.Storage;
using Burnrate.Storage.ClickHouse;
using Burnrate.Storage.DuckDb;
using Burnrate.Tests.Support;

namespace Burnrate.Tests.Storage;

/// <summary>The store contract on the embedded DuckDB store (a file per store, so it can be reopened).</summary>
public sealed class DuckDbStoreContractTests : CostStoreContract
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "burnrate-contract-" + Guid.NewGuid().ToString("N"));
    private readonly Dictionary<ICostStore, string> _paths = [];

    protected override async Task<ICostStore> OpenNewAsync()
    {
        var path = Path.Combine(_directory, Guid.NewGuid().ToString("N") + ".duckdb");
        var store = await DuckDbCostStore.OpenAsync(path, ct: Ct);
        _paths[store] = path;
        return store;
    }

    protected override async Task<ICostStore> ReopenAsync(ICostStore store)
    {
        var path = _paths[store];
        await store.DisposeAsync();
        var reopened = await DuckDbCostStore.OpenAsync(path, ct: Ct);
        _paths[reopened] = path;
        return reopened;
    }

    protected override ValueTask CleanUpAsync()
    {
        if (Directory.Exists(_directory))
            Directory.Delete(_directory, recursive: true);
        return ValueTask.CompletedTask;
    }
}

/// <summary>Real ClickHouse servers for a test class, started on first use (so a missing server skips, or fails in CI).</summary>
public abstract class ClickHouseServers(int shards, int replicas = 1) : IAsyncDisposable
{
    private readonly SemaphoreSlim _start = new(1, 1);
    private ClickHousePeer? _peer;

    public async Task<ClickHousePeer> GetAsync(CancellationToken cancellationToken)
    {
        await _start.WaitAsync(cancellationToken);
        try
        {
            return _peer ??= await ClickHousePeer.StartAsync(shards, cancellationToken, replicas);
        }
        finally
        {
            _start.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_peer is not null)
            await _peer.DisposeAsync();
        _start.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>One ClickHouse server.</summary>
public sealed class SingleClickHouse() : ClickHouseServers(1);

/// <summary>Two ClickHouse servers, each a shard of one cluster, behind Distributed tables.</summary>
public sealed class ShardedClickHouse() : ClickHouseServers(2);

/// <summary>Two shards of two replicas each (four servers and a ZooKeeper), replicated tables behind Distributed ones.</summary>
public sealed class ReplicatedClickHouse() : ClickHouseServers(2, 2);

/// <summary>
/// The store contract on ClickHouse, plus a side-by-side check: the same writes through DuckDB and through ClickHouse
/// give identical reports, row for row, to the nano-dollar. Each store gets a database of its own.
/// </summary>
public abstract class ClickHouseStoreContract(ClickHouseServers servers) : CostStoreContract
{
    private readonly List<string> _databases = [];
    private ClickHousePeer? _peer;

    /// <summary>The servers this contract runs on.</summary>
    protected async Task<ClickHousePeer> PeerAsync() => _peer ??= await servers.GetAsync(Ct);

    protected override async Task<ICostStore> OpenNewAsync()
    {
        _peer ??= await servers.GetAsync(Ct);
        var options = _peer.NewOptions();
        _databases.Add(options.Database);
        return await ClickHouseCostStore.OpenAsync(options, ct: Ct);
    }

    protected override async Task<ICostStore> ReopenAsync(ICostStore store)
    {
        var options = ((ClickHouseCostStore)store).Options;
        await store.DisposeAsync();
        return await ClickHouseCostStore.OpenAsync(options, ct: Ct);
    }

    protected override async ValueTask CleanUpAsync()
    {
        if (_peer is null)
            return;
        foreach (var database in _databases)
            await _peer.DropAsync(database);
    }

    [Fact]
    public async Task Every_report_equals_the_embedded_stores_row_for_row()
    {
        var random = new Random(42);
        var lines = SomeLines.Random(random, 2_000, days: 3);
        var clickHouse = await OpenAsync();
        await using var duck = await DuckDbCostStore.OpenAsync(":memory:", ct: Ct);
        var batches = lines.GroupBy(l => (l.Minute, l.ResourceId)).OrderBy(_ => random.Next()).Chunk(500).Select(b => b.SelectMany(g => g).ToList()).ToList();
        // Replays and a re-rating (the first batch again with other amounts) on top.
        batches.Add(batches[1]);
        batches.Add([.. batches[0].Select(l => l with { Cost = new Money(l.Cost.Nanos + 1) })]);
        foreach (var batch in batches)
        {
            await clickHouse.WriteAsync(batch, Ct);
            await duck.WriteAsync(batch, Ct);
        }
        var dimensions = Enum.GetValues<CostDimension>();
        TimeSpan?[] steps = [null, null, TimeSpan.FromMinutes(13), TimeSpan.FromHours(1), TimeSpan.FromHours(7), TimeSpan.FromDays(1)];

        for (var q = 0; q < 30; q++)
        {
            var query = RandomQuery(random, dimensions, steps);
            var expected = await duck.QueryCostsAsync(query, Ct);
            var actual = await clickHouse.QueryCostsAsync(query, Ct);
            Assert.Equal(Render(expected), Render(actual));
        }
        Assert.Equal(await duck.GetLedgerSpanAsync(Ct), await clickHouse.GetLedgerSpanAsync(Ct));
    }

    [Fact]
    public async Task A_database_from_a_newer_build_is_refused_with_a_clear_error()
    {
        var store = (ClickHouseCostStore)await OpenAsync();
        Assert.Equal(ClickHouseSchema.CurrentVersion, await store.GetSchemaVersionAsync(Ct));
        foreach (var url in store.Options.Urls)
        {
            await using var one = await ClickHouseCostStore.OpenAsync(store.Options with { Urls = [url] }, ct: Ct);
            await one.ExecuteAsync($"INSERT INTO {store.Options.Database}.schema_version VALUES (99, 'from the future', '2030-01-01 00:00:00')", Ct);
        }

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => ClickHouseCostStore.OpenAsync(store.Options, ct: Ct));

        Assert.Contains("schema version 99", error.Message, StringComparison.Ordinal);
        Assert.Contains("newer Burnrate", error.Message, StringComparison.Ordinal);
    }

    private static List<string> Render(IEnumerable<CostReportRow> rows) =>
        [.. rows.Select(r => $"{string.Join(',', r.Keys)}|{r.BucketStart?.UtcDateTime:O}|{r.Cost.Nanos}|{r.IdleCost.Nanos}|{r.GpuSeconds:0.000000}")];
}

/// <summary>The contract on one ClickHouse server.</summary>
public sealed class ClickHouseSingleStoreContractTests(SingleClickHouse servers) : ClickHouseStoreContract(servers), IClassFixture<SingleClickHouse>;

/// <summary>The contract on a two-shard ClickHouse cluster behind Distributed tables.</summary>
public sealed class ClickHouseShardedStoreContractTests(ShardedClickHouse servers) : ClickHouseStoreContract(servers), IClassFixture<ShardedClickHouse>;

/// <summary>
/// The contract on two shards of two replicas each (ReplicatedReplacingMergeTree through ZooKeeper), plus: each shard's
/// replicas end up holding the same rows.
/// </summary>
public sealed class ClickHouseReplicatedStoreContractTests(ReplicatedClickHouse servers) : ClickHouseStoreContract(servers), IClassFixture<ReplicatedClickHouse>
{
    [Fact]
    public async Task Each_shards_replicas_hold_the_same_rows()
    {
        var store = (ClickHouseCostStore)await OpenAsync();
        var peer = await PeerAsync();
        var database = store.Options.Database;
        await store.WriteAsync(SomeLines.Random(new Random(5), 400), Ct);

        // Replication is asynchronous: wait (bounded) until both replicas of each shard agree.
        long[] counts = [];
        for (var i = 0; i < 300; i++)
        {
            counts = await peer.CountLocalRowsAsync(database, "cost_minutes_local", Ct);
            if (counts[0] == counts[1] && counts[2] == counts[3])
                break;
            await Task.Delay(100, Ct);
        }
        Assert.Equal(counts[0], counts[1]);
        Assert.Equal(counts[2], counts[3]);
        Assert.True(counts[0] > 0 && counts[2] > 0, "a shard holds nothing: " + string.Join(", ", counts));
        var total = await store.QueryRowsAsync("SELECT count() FROM cost_minutes", Ct); // through the Distributed table
        Assert.Equal(long.Parse(total[0][0]!, System.Globalization.CultureInfo.InvariantCulture), counts[0] + counts[2]);
    }
}
