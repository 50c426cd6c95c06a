using System.Text.RegularExpressions;

namespace Burnrate.Storage.ClickHouse;

/// <summary>Where the ClickHouse store lives and how its tables are laid out.</summary>
public sealed partial record ClickHouseOptions
{
    /// <summary>
    /// The HTTP URLs of every server (<c>http://host:8123</c>). Tables are created on each; reads and writes go to
    /// the first that answers (in a cluster, every server holds the <c>Distributed</c> tables).
    /// </summary>
    public required IReadOnlyList<Uri> Urls { get; init; }

    /// <summary>The database; created when missing.</summary>
    public string Database { get; init; } = "burnrate";

    /// <summary>
    /// The cluster (a name in the servers' <c>remote_servers</c>) to spread the ledger over with <c>Distributed</c>
    /// tables, or null for one server with plain tables.
    /// </summary>
    public string? Cluster { get; init; }

    /// <summary>
    /// Whether the cluster's shards have replicas: the local tables are then <c>ReplicatedReplacingMergeTree</c> under
    /// <c>/clickhouse/tables/{shard}/{database}/{table}</c> (needs ZooKeeper and the <c>shard</c>/<c>replica</c> macros).
    /// </summary>
    public bool Replicated { get; init; }

    /// <summary>User name (sent as <c>X-ClickHouse-User</c>); null for the server's default user.</summary>
    public string? User { get; init; }

    /// <summary>Password of <see cref="User"/>.</summary>
    public string? Password { get; init; }

    /// <summary>How long one request may take.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Checks the names that are spliced into SQL.</summary>
    /// <exception cref="ArgumentException">A name is not a plain identifier, or no URL is given.</exception>
    public void Validate()
    {
        if (Urls.Count == 0)
            throw new ArgumentException("storage.clickhouse.urls needs at least one http://host:port of a ClickHouse server.");
        foreach (var url in Urls)
        {
            if (url.Scheme is not ("http" or "https"))
                throw new ArgumentException($"storage.clickhouse.urls: '{url}' is not an http(s) URL of ClickHouse's HTTP interface.");
        }
        if (!Identifier().IsMatch(Database))
            throw new ArgumentException($"storage.clickhouse.database '{Database}' must be letters, digits and underscores, starting with a letter or underscore.");
        if (Cluster is not null && !Identifier().IsMatch(Cluster))
            throw new ArgumentException($"storage.clickhouse.cluster '{Cluster}' must be letters, digits and underscores, starting with a letter or underscore.");
        if (Replicated && Cluster is null)
            throw new ArgumentException("storage.clickhouse.replicated needs storage.clickhouse.cluster: replicas belong to a cluster's shards.");
    }

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$")]
    private static partial Regex Identifier();
}
