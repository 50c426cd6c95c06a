using System.Diagnostics;
using System.Globalization;
using System.Text;
using Burnrate.Storage.ClickHouse;

namespace Burnrate.Tests.Support;

/// <summary>
/// Real ClickHouse servers (Debian's <c>clickhouse-server</c>) on loopback ports with their data in a temporary
/// directory: one server, or several, each a shard of the cluster <see cref="ClusterName"/>, or shards of two replicas
/// each kept in step through a ZooKeeper (Debian's <c>zookeeper</c>) started here too. Tests isolate themselves by
/// database (<see cref="NewOptions"/>), not by restarting servers.
/// </summary>
public sealed class ClickHousePeer : IAsyncDisposable
{
    /// <summary>The cluster every server's configuration declares (one shard per server).</summary>
    public const string ClusterName = "burnrate_test";

    private const string ZooKeeperJar = "/usr/share/java/zookeeper.jar";

    private readonly string _directory;
    private readonly Server[] _servers;
    private readonly string _binary;
    private readonly int _replicas;
    private readonly StringBuilder _zooKeeperLog = new();
    private Process? _zooKeeper;
    private int _zooKeeperPort;

    private ClickHousePeer(string binary, string directory, Server[] servers, int replicas)
    {
        _binary = binary;
        _directory = directory;
        _servers = servers;
        _replicas = replicas;
    }

    /// <summary>The servers' HTTP URLs, shard order (a shard's replicas side by side).</summary>
    public IReadOnlyList<Uri> Urls => [.. _servers.Select(s => s.Url)];

    /// <summary>Whether the servers form a cluster with <c>Distributed</c> tables (more than one server).</summary>
    public bool Sharded => _servers.Length > 1;

    /// <summary>Whether each shard has replicas (replicated tables through ZooKeeper).</summary>
    public bool Replicated => _replicas > 1;

    /// <summary>
    /// Starts <paramref name="shards"/> × <paramref name="replicas"/> servers, and a ZooKeeper when there are replicas
    /// (skips locally / fails under CI when clickhouse-server or zookeeper is missing).
    /// </summary>
    public static async Task<ClickHousePeer> StartAsync(int shards, CancellationToken cancellationToken, int replicas = 1)
    {
        // A port found free can be taken by another test's process before the server binds it (many servers start at
        // once across test classes): start again on fresh ports.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await StartOnceAsync(shards, replicas, cancellationToken);
            }
            catch (InvalidOperationException e) when (attempt < 4 && e.Message.Contains("Address already in use", StringComparison.Ordinal))
            {
            }
        }
    }

    private static async Task<ClickHousePeer> StartOnceAsync(int shards, int replicas, CancellationToken cancellationToken)
    {
        var binary = RealPeer.Require("clickhouse-server", "clickhouse-server");
        string? java = null;
        if (replicas > 1)
        {
            java = RealPeer.Require("java", "zookeeper");
            if (!File.Exists(ZooKeeperJar))
            {
                var reason = $"{ZooKeeperJar} is missing (Debian package 'zookeeper'; ./test.sh installs it)";
                if (RealPeer.InCi)
                    Assert.Fail(reason + " and CI=true: real-peer tests must run in CI");
                Assert.Skip(reason);
            }
        }
        var directory = Path.Combine(Path.GetTempPath(), "burnrate-clickhouse-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(directory);
        var servers = new Server[shards * replicas];
        for (var i = 0; i < servers.Length; i++)
        {
            servers[i] = new Server(Path.Combine(directory, "s" + i.ToString(CultureInfo.InvariantCulture)), RealPeer.FreePort(), RealPeer.FreePort(), RealPeer.FreePort())
            {
                Shard = (i / replicas) + 1,
                Replica = (i % replicas) + 1,
            };
        }
        var peer = new ClickHousePeer(binary, directory, servers, replicas);
        try
        {
            if (java is not null)
                await peer.StartZooKeeperAsync(java, cancellationToken);
            foreach (var server in servers)
                peer.WriteConfig(server);
            foreach (var server in servers)
                peer.Launch(server);
            foreach (var server in servers)
                await WaitReadyAsync(server, cancellationToken);
            return peer;
        }
        catch
        {
            await peer.DisposeAsync();
            throw;
        }
    }

    /// <summary>Store options for a fresh database of its own on these servers.</summary>
    public ClickHouseOptions NewOptions() => new()
    {
        Urls = Urls,
        Database = "t_" + Guid.NewGuid().ToString("N")[..16],
        Cluster = Sharded ? ClusterName : null,
        Replicated = Replicated,
        Timeout = TimeSpan.FromSeconds(30),
    };

    /// <summary>Counts the rows of a table's local copy on each server, in <see cref="Urls"/> order.</summary>
    public async Task<long[]> CountLocalRowsAsync(string database, string localTable, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        var counts = new long[_servers.Length];
        for (var i = 0; i < _servers.Length; i++)
        {
            using var response = await http.PostAsync(_servers[i].Url, new StringContent($"SELECT count() FROM {database}.{localTable}"), cancellationToken);
            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            Assert.True(response.IsSuccessStatusCode, text);
            counts[i] = long.Parse(text.Trim(), CultureInfo.InvariantCulture);
        }
        return counts;
    }

    private async Task StartZooKeeperAsync(string java, CancellationToken cancellationToken)
    {
        var zk = Path.Combine(_directory, "zk");
        Directory.CreateDirectory(Path.Combine(zk, "data"));
        _zooKeeperPort = RealPeer.FreePort();
        var config = Path.Combine(zk, "zoo.cfg");
        File.WriteAllLines(config,
        [
            "tickTime=2000", "initLimit=10", "syncLimit=5", "dataDir=" + Path.Combine(zk, "data"),
            "clientPort=" + _zooKeeperPort.ToString(CultureInfo.InvariantCulture), "clientPortAddress=127.0.0.1",
            "admin.enableServer=false", "4lw.commands.whitelist=ruok", "maxClientCnxns=0",
        ]);
        _zooKeeper = RealPeer.Start(java, ["-Xmx256m", "-Dzookeeper.admin.enableServer=false", "-cp", ZooKeeperJar,
            "org.apache.zookeeper.server.quorum.QuorumPeerMain", config], _zooKeeperLog);
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < TimeSpan.FromSeconds(60))
        {
            if (_zooKeeper.HasExited)
                throw new InvalidOperationException("ZooKeeper exited while starting:\n" + _zooKeeperLog);
            try
            {
                using var client = new System.Net.Sockets.TcpClient();
                await client.ConnectAsync(System.Net.IPAddress.Loopback, _zooKeeperPort, cancellationToken);
                var stream = client.GetStream();
                await stream.WriteAsync("ruok"u8.ToArray(), cancellationToken);
                var buffer = new byte[4];
                var read = await stream.ReadAtLeastAsync(buffer, 4, throwOnEndOfStream: false, cancellationToken);
                if (read == 4 && Encoding.ASCII.GetString(buffer) == "imok")
                    return;
            }
            catch (System.Net.Sockets.SocketException)
            {
            }
            catch (IOException)
            {
            }
            await Task.Delay(200, cancellationToken);
        }
        throw new TimeoutException("ZooKeeper did not answer ruok within 60 s:\n" + _zooKeeperLog);
    }

    /// <summary>Drops a test's database on every server (best effort).</summary>
    public async Task DropAsync(string database)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        foreach (var server in _servers)
        {
            try
            {
                using var response = await http.PostAsync(server.Url, new StringContent($"DROP DATABASE IF EXISTS {database}"));
            }
            catch (HttpRequestException)
            {
            }
        }
    }

    /// <summary>Kills shard <paramref name="index"/> (its data stays on disk).</summary>
    public void Stop(int index)
    {
        RealPeer.Stop(_servers[index].Process);
        _servers[index].Process = null;
    }

    /// <summary>Starts shard <paramref name="index"/> again on the same ports and data.</summary>
    public async Task RestartAsync(int index, CancellationToken cancellationToken)
    {
        Launch(_servers[index]);
        await WaitReadyAsync(_servers[index], cancellationToken);
    }

    private void Launch(Server server)
    {
        server.Log.Clear();
        server.Process = RealPeer.Start(_binary, ["--config-file=" + Path.Combine(server.Directory, "config.xml")], server.Log);
    }

    private static async Task WaitReadyAsync(Server server, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < TimeSpan.FromSeconds(60))
        {
            if (server.Process is null || server.Process.HasExited)
                throw new InvalidOperationException($"clickhouse-server exited while starting:\n{server.Log}\n{ReadLog(server)}");
            try
            {
                var answer = await http.GetStringAsync(new Uri(server.Url, "ping"), cancellationToken);
                if (answer.StartsWith("Ok.", StringComparison.Ordinal))
                    return;
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
            }
            await Task.Delay(100, cancellationToken);
        }
        throw new TimeoutException($"clickhouse-server on {server.Url} did not answer /ping within 60 s:\n{server.Log}\n{ReadLog(server)}");
    }

    private static string ReadLog(Server server)
    {
        var path = Path.Combine(server.Directory, "log", "clickhouse-server.err.log");
        return File.Exists(path) ? File.ReadAllText(path) : "";
    }

    private void WriteConfig(Server server)
    {
        var data = Path.Combine(server.Directory, "data") + "/";
        foreach (var sub in new[] { "", "tmp", "user_files", "format_schemas" })
            Directory.CreateDirectory(Path.Combine(data, sub));
        Directory.CreateDirectory(Path.Combine(server.Directory, "log"));
        // With replicas, the replicated tables copy each insert themselves: a Distributed insert goes to one replica.
        var shards = new StringBuilder();
        foreach (var shard in _servers.GroupBy(s => s.Shard))
        {
            shards.Append(CultureInfo.InvariantCulture, $"<shard><internal_replication>{(Replicated ? "true" : "false")}</internal_replication>");
            foreach (var s in shard)
                shards.Append(CultureInfo.InvariantCulture, $"<replica><host>127.0.0.1</host><port>{s.TcpPort}</port></replica>");
            shards.Append("</shard>");
        }
        var replication = Replicated
            ? string.Create(CultureInfo.InvariantCulture, $"<macros><shard>{server.Shard:00}</shard><replica>r{server.Replica}</replica></macros><zookeeper><node><host>127.0.0.1</host><port>{_zooKeeperPort}</port></node><session_timeout_ms>30000</session_timeout_ms></zookeeper>")
            : "";
        var log = Path.Combine(server.Directory, "log");
        File.WriteAllText(Path.Combine(server.Directory, "config.xml"), $"""
            <?xml version="1.0"?>
            <yandex>
                <logger>
                    <level>warning</level>
                    <log>{log}/clickhouse-server.log</log>
                    <errorlog>{log}/clickhouse-server.err.log</errorlog>
                    <size>10M</size>
                    <count>1</count>
                </logger>
                <listen_host>127.0.0.1</listen_host>
                <http_port>{server.HttpPort}</http_port>
                <tcp_port>{server.TcpPort}</tcp_port>
                <interserver_http_port>{server.InterserverPort}</interserver_http_port>
                <interserver_http_host>127.0.0.1</interserver_http_host>
                <path>{data}</path>
                <tmp_path>{data}tmp/</tmp_path>
                <user_files_path>{data}user_files/</user_files_path>
                <format_schema_path>{data}format_schemas/</format_schema_path>
                <users_config>{server.Directory}/users.xml</users_config>
                <default_profile>default</default_profile>
                <default_database>default</default_database>
                <timezone>UTC</timezone>
                <mlock_executable>false</mlock_executable>
                <mark_cache_size>67108864</mark_cache_size>
                <uncompressed_cache_size>67108864</uncompressed_cache_size>
                <max_table_size_to_drop>0</max_table_size_to_drop>
                <max_partition_size_to_drop>0</max_partition_size_to_drop>
                <remote_servers><{ClusterName}>{shards}</{ClusterName}></remote_servers>
                {replication}
            </yandex>
            """);
        File.WriteAllText(Path.Combine(server.Directory, "users.xml"), """
            <?xml version="1.0"?>
            <yandex>
                <profiles><default><max_memory_usage>2000000000</max_memory_usage><load_balancing>in_order</load_balancing></default></profiles>
                <users>
                    <default>
                        <password></password>
                        <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
                        <profile>default</profile>
                        <quota>default</quota>
                    </default>
                </users>
                <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
            </yandex>
            """);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var server in _servers)
        {
            RealPeer.Stop(server.Process);
            server.Process = null;
        }
        RealPeer.Stop(_zooKeeper); // last: servers flush to it on the way down
        _zooKeeper = null;
        await Task.Yield();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private sealed class Server(string directory, int httpPort, int tcpPort, int interserverPort)
    {
        public string Directory { get; } = directory;
        public int HttpPort { get; } = httpPort;
        public int TcpPort { get; } = tcpPort;
        public int InterserverPort { get; } = interserverPort;
        public Uri Url => new(string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{HttpPort}/"));
        public StringBuilder Log { get; } = new();
        public Process? Process { get; set; }
        public int Shard { get; init; } = 1;
        public int Replica { get; init; } = 1;
    }
}
