using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Burnrate.Ingest;

/// <summary>
/// The ingest write-ahead log: every accepted request is appended here before it is acknowledged, so a process killed
/// at any instant (<c>kill -9</c>) loses nothing it answered 2xx for. Records live in numbered segment files in one
/// directory; a checkpoint file says through which minute the ledger already holds the rated result. Format and
/// recovery rules: docs/ingest.md, "Write-ahead log".
/// </summary>
/// <remarks>
/// Record layout (little-endian): <c>u32 length</c>, <c>u32 crc32(payload)</c>, then the payload: <c>u8 kind</c>,
/// <c>i64 received-at (Unix ms)</c>, <c>u16 source length</c>, the source in UTF-8, the body. A record that is cut short
/// or fails its checksum at the end of the newest segment is a write the crash interrupted (never acknowledged): it is
/// cut off on open. Appends are serialized; reads happen only on open (replay) and during compaction.
/// </remarks>
public sealed partial class WriteAheadLog : IDisposable
{
    /// <summary>The first eight bytes of every segment.</summary>
    internal static ReadOnlySpan<byte> Magic => "BRWAL001"u8;

    private const string SegmentExtension = ".wal";
    private const string CheckpointFile = "checkpoint";
    private const int HeaderBytes = 8;
    private const int FixedPayloadBytes = 1 + 8 + 2;

    private readonly string _directory;
    private readonly WriteAheadLogOptions _options;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private readonly List<Segment> _closed = [];
    private Segment _current;
    private FileStream _stream;
    private long _appendedRecords;
    private bool _disposed;

    private WriteAheadLog(string directory, WriteAheadLogOptions options, ILogger logger, List<Segment> closed, Segment current, FileStream stream)
    {
        _directory = directory;
        _options = options;
        _logger = logger;
        _closed = closed;
        _current = current;
        _stream = stream;
    }

    /// <summary>The directory the segments live in.</summary>
    public string Directory => _directory;

    /// <summary>Bytes on disk over all segments.</summary>
    public long Bytes
    {
        get
        {
            lock (_lock)
                return _closed.Sum(s => s.Bytes) + _current.Bytes;
        }
    }

    /// <summary>Segment files on disk, the one being written included.</summary>
    public int SegmentCount
    {
        get
        {
            lock (_lock)
                return _closed.Count + 1;
        }
    }

    /// <summary>Records appended since open.</summary>
    public long AppendedRecords => Interlocked.Read(ref _appendedRecords);

    /// <summary>Bytes of a torn final record cut off when the log was opened (0 after a clean stop).</summary>
    public long TruncatedOnOpen { get; private set; }

    /// <summary>
    /// Opens (creating if needed) the log in <paramref name="directory"/>: scans the segments, cuts off a torn final
    /// record, and starts a new segment for appends. Read what was there with <see cref="ReadAll"/> before appending.
    /// </summary>
    public static WriteAheadLog Open(string directory, WriteAheadLogOptions? options = null, ILogger? logger = null)
    {
        options ??= new WriteAheadLogOptions();
        logger ??= NullLogger.Instance;
        System.IO.Directory.CreateDirectory(directory);
        var closed = new List<Segment>();
        long truncated = 0;
        var files = System.IO.Directory.GetFiles(directory, "*" + SegmentExtension)
            .Select(f => (Path: f, Sequence: ParseSequence(f)))
            .Where(f => f.Sequence >= 0)
            .OrderBy(f => f.Sequence)
            .ToList();
        for (var i = 0; i < files.Count; i++)
        {
            var (path, sequence) = files[i];
            var scan = Scan(path);
            if (scan.GoodBytes < new FileInfo(path).Length)
            {
                var cut = new FileInfo(path).Length - scan.GoodBytes;
                truncated += cut;
                if (scan.GoodBytes <= HeaderBytes)
                {
                    File.Delete(path);
                    LogTornTail(logger, Path.GetFileName(path), cut);
                    continue;
                }
                using (var fix = new FileStream(path, FileMode.Open, FileAccess.Write))
                    fix.SetLength(scan.GoodBytes);
                LogTornTail(logger, Path.GetFileName(path), cut);
            }
            closed.Add(new Segment(sequence, path, scan.GoodBytes, scan.MaxReceivedMs, scan.Records));
        }
        var next = closed.Count == 0 ? 1 : closed[^1].Sequence + 1;
        var (current, stream) = CreateSegment(directory, next);
        return new WriteAheadLog(directory, options, logger, closed, current, stream) { TruncatedOnOpen = truncated };
    }

    /// <summary>
    /// Appends one record and returns once it is in the operating system's hands (and on disk, with
    /// <see cref="WriteAheadLogOptions.Fsync"/>): from then on a crash of this process cannot lose it.
    /// </summary>
    public void Append(IngestRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        var sourceBytes = Encoding.UTF8.GetByteCount(record.Source);
        if (sourceBytes > ushort.MaxValue)
            throw new ArgumentException("the record's source is longer than 65535 bytes", nameof(record));
        var payloadLength = FixedPayloadBytes + sourceBytes + record.Body.Length;
        var total = 8 + payloadLength;
        var buffer = ArrayPool<byte>.Shared.Rent(total);
        try
        {
            var span = buffer.AsSpan(0, total);
            var payload = span[8..];
            payload[0] = (byte)record.Kind;
            BinaryPrimitives.WriteInt64LittleEndian(payload[1..], record.ReceivedAt.ToUnixTimeMilliseconds());
            BinaryPrimitives.WriteUInt16LittleEndian(payload[9..], (ushort)sourceBytes);
            Encoding.UTF8.GetBytes(record.Source, payload[11..]);
            record.Body.Span.CopyTo(payload[(11 + sourceBytes)..]);
            BinaryPrimitives.WriteUInt32LittleEndian(span, (uint)payloadLength);
            BinaryPrimitives.WriteUInt32LittleEndian(span[4..], Crc32.Compute(payload));
            lock (_lock)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                var received = record.ReceivedAt.ToUnixTimeMilliseconds();
                if (_current.Records > 0 && (_current.Bytes >= _options.SegmentBytes || received - _current.FirstReceivedMs >= (long)_options.SegmentSpan.TotalMilliseconds))
                    Roll();
                if (_current.Records == 0)
                    _current.FirstReceivedMs = received;
                _stream.Write(span);
                _stream.Flush(_options.Fsync);
                _current.Bytes += total;
                _current.Records++;
                _current.MaxReceivedMs = Math.Max(_current.MaxReceivedMs, received);
            }
            Interlocked.Increment(ref _appendedRecords);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// Every record of the closed segments, oldest first: right after <see cref="Open"/>, exactly what was there before
    /// (the replay on start). Call it before appending: segments closed since open would be included too.
    /// </summary>
    public IEnumerable<IngestRecord> ReadAll()
    {
        List<Segment> segments;
        lock (_lock)
            segments = [.. _closed];
        foreach (var segment in segments)
        {
            if (!File.Exists(segment.Path))
                continue;
            foreach (var record in ReadSegment(segment.Path))
                yield return record;
        }
    }

    /// <summary>The end of the last minute the ledger held when the checkpoint was written, or null before the first.</summary>
    public DateTimeOffset? ReadCheckpoint()
    {
        var path = Path.Combine(_directory, CheckpointFile);
        if (!File.Exists(path))
            return null;
        var text = File.ReadAllText(path).Trim();
        const string Prefix = "rated_through=";
        if (text.StartsWith(Prefix, StringComparison.Ordinal)
            && DateTimeOffset.TryParse(text[Prefix.Length..], CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var through))
            return through;
        LogBadCheckpoint(_logger, path);
        return null;
    }

    /// <summary>
    /// Records that every minute before <paramref name="ratedThrough"/> is in the ledger (written atomically: a crash
    /// leaves the old checkpoint or the new one).
    /// </summary>
    public void WriteCheckpoint(DateTimeOffset ratedThrough)
    {
        var path = Path.Combine(_directory, CheckpointFile);
        var temp = path + ".tmp";
        File.WriteAllText(temp, "rated_through=" + ratedThrough.UtcDateTime.ToString("O", CultureInfo.InvariantCulture) + "\n");
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>
    /// Frees the segments (not the one being written) whose newest record was received before <paramref name="before"/>.
    /// Records <paramref name="keep"/> still wants (lifecycle events of things that are still running) stay: the segment
    /// is rewritten with just those. Returns the bytes freed.
    /// </summary>
    public long Compact(DateTimeOffset before, Func<IngestRecord, bool> keep)
    {
        ArgumentNullException.ThrowIfNull(keep);
        var limit = before.ToUnixTimeMilliseconds();
        List<Segment> candidates;
        lock (_lock)
            candidates = [.. _closed.Where(s => s.MaxReceivedMs < limit)];
        long freed = 0;
        foreach (var segment in candidates)
        {
            var kept = ReadSegment(segment.Path).Where(keep).ToList();
            var before0 = segment.Bytes;
            if (kept.Count == 0)
            {
                File.Delete(segment.Path);
                lock (_lock)
                    _closed.Remove(segment);
                freed += before0;
                continue;
            }
            if (kept.Count == segment.Records)
                continue;
            var temp = segment.Path + ".tmp";
            long bytes;
            using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write))
            {
                stream.Write(Magic);
                foreach (var record in kept)
                    WriteRecord(stream, record);
                stream.Flush(flushToDisk: true);
                bytes = stream.Length;
            }
            File.Move(temp, segment.Path, overwrite: true);
            lock (_lock)
            {
                segment.Bytes = bytes;
                segment.Records = kept.Count;
            }
            freed += before0 - bytes;
        }
        return freed;
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
                return;
            _disposed = true;
            _stream.Flush(flushToDisk: true);
            _stream.Dispose();
            if (_current.Records == 0)
                File.Delete(_current.Path);
        }
    }

    private void Roll()
    {
        _stream.Flush(flushToDisk: true);
        _stream.Dispose();
        _closed.Add(_current);
        (_current, _stream) = CreateSegment(_directory, _current.Sequence + 1);
    }

    private static (Segment, FileStream) CreateSegment(string directory, long sequence)
    {
        var path = Path.Combine(directory, sequence.ToString("D8", CultureInfo.InvariantCulture) + SegmentExtension);
        var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read, bufferSize: 0);
        stream.Write(Magic);
        return (new Segment(sequence, path, HeaderBytes, long.MinValue, 0), stream);
    }

    private static void WriteRecord(Stream stream, IngestRecord record)
    {
        var source = Encoding.UTF8.GetBytes(record.Source);
        var payload = new byte[FixedPayloadBytes + source.Length + record.Body.Length];
        payload[0] = (byte)record.Kind;
        BinaryPrimitives.WriteInt64LittleEndian(payload.AsSpan(1), record.ReceivedAt.ToUnixTimeMilliseconds());
        BinaryPrimitives.WriteUInt16LittleEndian(payload.AsSpan(9), (ushort)source.Length);
        source.CopyTo(payload, 11);
        record.Body.Span.CopyTo(payload.AsSpan(11 + source.Length));
        Span<byte> head = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(head, (uint)payload.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(head[4..], Crc32.Compute(payload));
        stream.Write(head);
        stream.Write(payload);
    }

    private static long ParseSequence(string path) =>
        long.TryParse(Path.GetFileNameWithoutExtension(path), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : -1;

    private readonly record struct ScanResult(long GoodBytes, long MaxReceivedMs, int Records);

    /// <summary>Walks a segment's records and returns where the last intact one ends.</summary>
    private static ScanResult Scan(string path)
    {
        long good = 0;
        var max = long.MinValue;
        var records = 0;
        foreach (var (record, end) in ReadRecords(path))
        {
            good = end;
            max = Math.Max(max, record.ReceivedAt.ToUnixTimeMilliseconds());
            records++;
        }
        if (records == 0)
            good = HasMagic(path) ? HeaderBytes : 0;
        return new ScanResult(good, max, records);
    }

    private static bool HasMagic(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        Span<byte> head = stackalloc byte[HeaderBytes];
        return stream.ReadAtLeast(head, HeaderBytes, throwOnEndOfStream: false) == HeaderBytes && head.SequenceEqual(Magic);
    }

    private static IEnumerable<IngestRecord> ReadSegment(string path) => ReadRecords(path).Select(r => r.Record);

    private static IEnumerable<(IngestRecord Record, long End)> ReadRecords(string path)
    {
        byte[] data;
        try
        {
            data = File.ReadAllBytes(path);
        }
        catch (FileNotFoundException)
        {
            yield break;
        }
        if (data.Length < HeaderBytes || !data.AsSpan(0, HeaderBytes).SequenceEqual(Magic))
            yield break;
        var offset = HeaderBytes;
        while (data.Length - offset >= 8)
        {
            var length = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(offset));
            var crc = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(offset + 4));
            if (length < FixedPayloadBytes || length > data.Length - offset - 8)
                yield break;
            var payload = new ReadOnlyMemory<byte>(data, offset + 8, (int)length);
            if (Crc32.Compute(payload.Span) != crc)
                yield break;
            var span = payload.Span;
            var kind = (IngestKind)span[0];
            var received = DateTimeOffset.FromUnixTimeMilliseconds(BinaryPrimitives.ReadInt64LittleEndian(span[1..]));
            var sourceLength = BinaryPrimitives.ReadUInt16LittleEndian(span[9..]);
            if (FixedPayloadBytes + sourceLength > length)
                yield break;
            var source = Encoding.UTF8.GetString(span.Slice(11, sourceLength));
            var body = payload[(11 + sourceLength)..];
            offset += 8 + (int)length;
            yield return (new IngestRecord(kind, received, source, body), offset);
        }
    }

    private sealed class Segment(long sequence, string path, long bytes, long maxReceivedMs, int records)
    {
        public long Sequence { get; } = sequence;
        public string Path { get; } = path;
        public long Bytes { get; set; } = bytes;
        public long MaxReceivedMs { get; set; } = maxReceivedMs;
        public int Records { get; set; } = records;
        public long FirstReceivedMs { get; set; }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "wal: {Segment} ended in a torn record ({Bytes} bytes, never acknowledged); cut off")]
    private static partial void LogTornTail(ILogger logger, string segment, long bytes);

    [LoggerMessage(Level = LogLevel.Warning, Message = "wal: checkpoint {Path} is unreadable; replaying every segment")]
    private static partial void LogBadCheckpoint(ILogger logger, string path);
}

/// <summary>Settings of the <see cref="WriteAheadLog"/>.</summary>
public sealed class WriteAheadLogOptions
{
    /// <summary>A segment is closed and a new one started once it holds this many bytes (default 64 MiB).</summary>
    public long SegmentBytes { get; init; } = 64L * 1024 * 1024;

    /// <summary>
    /// Whether each append waits for the disk (fsync). Off by default: an appended record is in the kernel's page cache,
    /// which survives the process being killed but not the machine losing power.
    /// </summary>
    public bool Fsync { get; init; }

    /// <summary>
    /// A segment is also closed once its records span this long (default 10 minutes), so old input can be freed in
    /// steps even when little arrives.
    /// </summary>
    public TimeSpan SegmentSpan { get; init; } = TimeSpan.FromMinutes(10);
}
