using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace Burnrate.Pricing.Feeds;

/// <summary>
/// The prices live feeds put in the book, kept in a file (one JSON object a line) so that a restart starts from them:
/// the log's replay re-rates its minutes at the prices they were first rated at, and a feed that is failing when the
/// server starts keeps its last good prices instead of falling back to the catalog's until its first good poll.
/// </summary>
/// <remarks>
/// Feeds write through this book: each entry is appended to the file, then added to the book. Opening reads the file
/// back into the book, oldest first, and rewrites it without what no longer matters: per key (provider, region, zone,
/// instance type, capacity) the entries of the last <c>keep</c> and the one in force when that span began. A line that
/// cannot be read (a write cut short by a crash) is skipped and counted.
/// </remarks>
public sealed class FeedPriceJournal : IPriceBook, IDisposable
{
    private readonly IPriceBook _book;
    private readonly StreamWriter _writer;
    private readonly Lock _lock = new();

    private FeedPriceJournal(IPriceBook book, StreamWriter writer, int restored, int unreadable)
    {
        _book = book;
        _writer = writer;
        Restored = restored;
        Unreadable = unreadable;
    }

    /// <summary>Entries read back into the book when the journal was opened.</summary>
    public int Restored { get; }

    /// <summary>Lines of the file that could not be read when it was opened (skipped).</summary>
    public int Unreadable { get; }

    /// <summary>
    /// Opens (or creates) the journal at <paramref name="path"/>: its entries go into <paramref name="book"/>, the file
    /// is rewritten keeping per key the entries of the last <paramref name="keep"/> before <paramref name="now"/> and
    /// the one in force at its start, and later entries are appended.
    /// </summary>
    public static FeedPriceJournal Open(string path, IPriceBook book, DateTimeOffset now, TimeSpan keep, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(book);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var entries = new List<InstancePrice>();
        var unreadable = 0;
        if (File.Exists(path))
        {
            foreach (var line in File.ReadLines(path))
            {
                if (line.Length == 0)
                    continue;
                if (TryRead(line, out var entry))
                    entries.Add(entry);
                else
                    unreadable++;
            }
        }
        if (unreadable > 0)
            logger?.LogWarning("Feed price journal {Path}: {Count} unreadable line(s) skipped (a write cut short?)", path, unreadable);

        var kept = Compact(entries, now - keep);
        foreach (var entry in kept)
            book.Add(entry);

        // Rewrite what is kept, then append from there: the file never holds less than the book was given.
        var temporary = path + ".tmp";
        using (var rewrite = new StreamWriter(temporary, append: false, new UTF8Encoding(false)))
        {
            foreach (var entry in kept)
                rewrite.WriteLine(Write(entry));
        }
        File.Move(temporary, path, overwrite: true);
        var writer = new StreamWriter(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read), new UTF8Encoding(false));
        return new FeedPriceJournal(book, writer, kept.Count, unreadable);
    }

    /// <inheritdoc/>
    public InstancePrice? Find(string provider, string region, string zone, string instanceType, CapacityType capacity, DateTimeOffset at) =>
        _book.Find(provider, region, zone, instanceType, capacity, at);

    /// <inheritdoc/>
    public DateTimeOffset? NextChange(string provider, string region, string zone, string instanceType, CapacityType capacity, DateTimeOffset after, DateTimeOffset before) =>
        _book.NextChange(provider, region, zone, instanceType, capacity, after, before);

    /// <inheritdoc/>
    public IReadOnlyList<InstancePrice> InForce(DateTimeOffset at) => _book.InForce(at);

    /// <summary>Appends <paramref name="price"/> to the file (flushed), then adds it to the book.</summary>
    public void Add(InstancePrice price)
    {
        ArgumentNullException.ThrowIfNull(price);
        lock (_lock)
        {
            _writer.WriteLine(Write(price));
            _writer.Flush();
        }
        _book.Add(price);
    }

    /// <summary>Closes the file.</summary>
    public void Dispose()
    {
        lock (_lock)
            _writer.Dispose();
    }

    // Per key: every entry from the cutoff on, and the last one before it (in force when the kept span begins).
    private static List<InstancePrice> Compact(List<InstancePrice> entries, DateTimeOffset cutoff)
    {
        var kept = new List<InstancePrice>();
        foreach (var key in entries.GroupBy(e => (e.Provider.ToLowerInvariant(), e.Region.ToLowerInvariant(), (e.Zone ?? "").ToLowerInvariant(), e.InstanceType.ToLowerInvariant(), e.Capacity)))
        {
            var ordered = key.Select((e, i) => (Entry: e, Order: i)).OrderBy(x => x.Entry.EffectiveFrom).ThenBy(x => x.Order).Select(x => x.Entry).ToList();
            var firstKept = ordered.FindIndex(e => e.EffectiveFrom >= cutoff);
            if (firstKept < 0)
                firstKept = ordered.Count;
            kept.AddRange(ordered.Skip(Math.Max(0, firstKept - 1)));
        }
        return [.. kept.Select((e, i) => (Entry: e, Order: i)).OrderBy(x => x.Entry.EffectiveFrom).ThenBy(x => x.Order).Select(x => x.Entry)];
    }

    private static string Write(InstancePrice p)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("provider", p.Provider);
            json.WriteString("region", p.Region);
            json.WriteString("zone", p.Zone ?? "");
            json.WriteString("instance_type", p.InstanceType);
            json.WriteString("capacity", p.Capacity.ToName());
            // Decimals as text: read back exactly, whatever their scale.
            json.WriteString("price_per_hour", p.PricePerHour.ToString(CultureInfo.InvariantCulture));
            json.WriteString("gpu_price_per_hour", p.GpuPricePerHour.ToString(CultureInfo.InvariantCulture));
            json.WriteNumber("gpu_count", p.GpuCount);
            json.WriteString("gpu_model", p.GpuModel);
            json.WriteNumber("vcpus", p.VCpus);
            json.WriteString("memory_gib", p.MemoryGiB.ToString(CultureInfo.InvariantCulture));
            json.WriteString("effective_from", p.EffectiveFrom.UtcDateTime.ToString("O", CultureInfo.InvariantCulture));
            json.WriteString("source", p.Source);
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static bool TryRead(string line, out InstancePrice price)
    {
        price = null!;
        try
        {
            using var document = JsonDocument.Parse(line);
            var o = document.RootElement;
            if (!CapacityTypes.TryParse(o.GetProperty("capacity").GetString(), out var capacity))
                return false;
            price = new InstancePrice(
                o.GetProperty("provider").GetString()!, o.GetProperty("region").GetString()!, o.GetProperty("zone").GetString()!,
                o.GetProperty("instance_type").GetString()!, capacity,
                Number(o, "price_per_hour"), Number(o, "gpu_price_per_hour"), o.GetProperty("gpu_count").GetInt32(),
                o.GetProperty("gpu_model").GetString()!, o.GetProperty("vcpus").GetInt32(), Number(o, "memory_gib"),
                DateTimeOffset.Parse(o.GetProperty("effective_from").GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal),
                o.GetProperty("source").GetString()!);
            return true;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException or OverflowException)
        {
            return false;
        }
    }

    private static decimal Number(JsonElement o, string name) => decimal.Parse(o.GetProperty(name).GetString()!, NumberStyles.Number, CultureInfo.InvariantCulture);
}
