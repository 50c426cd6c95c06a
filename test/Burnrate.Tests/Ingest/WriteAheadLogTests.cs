using System.Text;
using Burnrate.Ingest;

namespace Burnrate.Tests.Ingest;

/// <summary>
/// The write-ahead log on disk: what is appended reads back byte for byte after a reopen, a write the crash interrupted
/// is cut off and everything before it survives, checkpoints replace each other atomically, segments roll, and
/// compaction frees old segments while keeping the records asked for.
/// </summary>
public sealed class WriteAheadLogTests : IDisposable
{
    private static readonly DateTimeOffset s_t0 = new(2026, 3, 2, 12, 0, 0, TimeSpan.Zero);

    private readonly string _dir = Directory.CreateTempSubdirectory("burnrate-wal-").FullName;

    [Fact]
    public void Records_of_every_kind_read_back_identical_after_a_reopen()
    {
        var written = new List<IngestRecord>
        {
            Record(IngestKind.RemoteWrite, s_t0.AddMilliseconds(1), "application/x-protobuf;proto=io.prometheus.write.v2.Request", [0xff, 0x00, 0x01, 0x80]),
            Record(IngestKind.OtlpProtobuf, s_t0.AddMilliseconds(2), "", [0x0a, 0x02, 0x08, 0x01]),
            Record(IngestKind.OtlpJson, s_t0.AddSeconds(3), "", """{"resourceMetrics": []}"""u8.ToArray()),
            Record(IngestKind.Exposition, s_t0.AddSeconds(4), "dcgm-exporter\n10.0.1.23:9400", "DCGM_FI_DEV_GPU_UTIL{gpu=\"0\"} 87\n"u8.ToArray()),
            Record(IngestKind.Events, s_t0.AddMinutes(5), "", """[{"type": "workload_stopped", "time": "2026-03-02T12:05:00Z", "workload_id": "w"}]"""u8.ToArray()),
            Record(IngestKind.RatingMark, s_t0.AddMinutes(6), "", []),
            Record(IngestKind.Events, s_t0.AddMinutes(7), "équipe ☃", new byte[70_000]), // a UTF-8 source, a body over 64 KiB
        };
        using (var wal = WriteAheadLog.Open(_dir))
        {
            foreach (var record in written)
                wal.Append(record);
            Assert.Equal(written.Count, wal.AppendedRecords);
            Assert.Empty(wal.ReadAll()); // only what was there when it was opened
        }

        using var reopened = WriteAheadLog.Open(_dir);

        Assert.Equal(0, reopened.TruncatedOnOpen);
        AssertSame(written, [.. reopened.ReadAll()]);
    }

    [Theory]
    [InlineData(3)]
    [InlineData(20)]
    public void A_final_record_cut_short_by_the_crash_is_cut_off_on_open_and_the_records_before_it_survive(int missingBytes)
    {
        var written = ThreeRecords();
        WriteAll(written);
        var segment = SegmentFiles().Single();
        var full = new FileInfo(segment).Length;
        var last = RecordBytes(written[^1]);
        using (var file = new FileStream(segment, FileMode.Open, FileAccess.Write))
            file.SetLength(full - missingBytes);

        using var wal = WriteAheadLog.Open(_dir);

        Assert.Equal(last - missingBytes, wal.TruncatedOnOpen);
        Assert.Equal(full - last, new FileInfo(segment).Length);
        AssertSame(written[..^1], [.. wal.ReadAll()]);
    }

    [Fact]
    public void Garbage_after_the_last_record_is_cut_off_on_open()
    {
        var written = ThreeRecords();
        WriteAll(written);
        var segment = SegmentFiles().Single();
        var full = new FileInfo(segment).Length;
        using (var file = new FileStream(segment, FileMode.Append, FileAccess.Write))
            file.Write([0x2a, 0x00, 0x00, 0x00, 0xde, 0xad]); // a length header of a record that never followed

        using var wal = WriteAheadLog.Open(_dir);

        Assert.Equal(6, wal.TruncatedOnOpen);
        Assert.Equal(full, new FileInfo(segment).Length);
        AssertSame(written, [.. wal.ReadAll()]);
    }

    [Fact]
    public void A_flipped_byte_in_the_last_record_fails_its_checksum_and_the_record_is_cut_off()
    {
        var written = ThreeRecords();
        WriteAll(written);
        var segment = SegmentFiles().Single();
        var bytes = File.ReadAllBytes(segment);
        var last = RecordBytes(written[^1]);
        bytes[bytes.Length - last / 2] ^= 0x10; // inside the last record's body: its length still fits
        File.WriteAllBytes(segment, bytes);

        using var wal = WriteAheadLog.Open(_dir);

        Assert.Equal(last, wal.TruncatedOnOpen);
        AssertSame(written[..^1], [.. wal.ReadAll()]);
    }

    [Fact]
    public void Appends_after_a_torn_tail_was_cut_read_back_after_the_survivors()
    {
        var written = ThreeRecords();
        WriteAll(written);
        var segment = SegmentFiles().Single();
        using (var file = new FileStream(segment, FileMode.Open, FileAccess.Write))
            file.SetLength(file.Length - 1);
        var later = Record(IngestKind.Events, s_t0.AddMinutes(10), "", "[]"u8.ToArray());
        using (var wal = WriteAheadLog.Open(_dir))
            wal.Append(later);

        using var reopened = WriteAheadLog.Open(_dir);

        Assert.Equal(0, reopened.TruncatedOnOpen);
        AssertSame([.. written[..^1], later], [.. reopened.ReadAll()]);
    }

    [Fact]
    public void A_checkpoint_reads_back_and_a_new_one_replaces_it_whole()
    {
        using (var wal = WriteAheadLog.Open(_dir))
        {
            Assert.Null(wal.ReadCheckpoint());
            wal.WriteCheckpoint(s_t0.AddMinutes(1));
            Assert.Equal(s_t0.AddMinutes(1), wal.ReadCheckpoint());
            wal.WriteCheckpoint(new DateTimeOffset(2026, 3, 2, 14, 2, 0, TimeSpan.FromHours(2))); // 12:02 UTC
            Assert.Equal(s_t0.AddMinutes(2), wal.ReadCheckpoint());
        }
        // A crash while writing the next one leaves its temporary file; the last complete checkpoint still counts.
        File.WriteAllText(Path.Combine(_dir, "checkpoint.tmp"), "rated_thr");
        using var reopened = WriteAheadLog.Open(_dir);
        Assert.Equal(s_t0.AddMinutes(2), reopened.ReadCheckpoint());
        reopened.WriteCheckpoint(s_t0.AddMinutes(3));
        Assert.Equal(s_t0.AddMinutes(3), reopened.ReadCheckpoint());
        Assert.Equal(["checkpoint"], Directory.GetFiles(_dir, "checkpoint*").Select(Path.GetFileName));
    }

    [Fact]
    public void An_unreadable_checkpoint_means_no_checkpoint()
    {
        using var wal = WriteAheadLog.Open(_dir);
        File.WriteAllText(Path.Combine(_dir, "checkpoint"), "rated_through=yesterday\n");

        Assert.Null(wal.ReadCheckpoint());
    }

    [Fact]
    public void A_segment_is_closed_once_it_holds_segment_bytes()
    {
        var record = Record(IngestKind.Events, s_t0, "", new byte[100]);
        var size = RecordBytes(record);
        // The header and two records fit under the limit; the third append finds it reached and starts a new segment.
        var options = new WriteAheadLogOptions { SegmentBytes = 8 + 2 * size };
        using (var wal = WriteAheadLog.Open(_dir, options))
        {
            for (var i = 0; i < 5; i++)
                wal.Append(record with { ReceivedAt = s_t0.AddSeconds(i) });
            Assert.Equal(3, wal.SegmentCount);
            Assert.Equal(3 * 8 + 5 * size, wal.Bytes);
        }

        Assert.Equal(["00000001.wal", "00000002.wal", "00000003.wal"], SegmentFiles().Select(Path.GetFileName));
        Assert.Equal([8 + 2 * size, 8 + 2 * size, 8 + size], SegmentFiles().Select(f => new FileInfo(f).Length));
        using var reopened = WriteAheadLog.Open(_dir, options);
        Assert.Equal(Enumerable.Range(0, 5).Select(i => s_t0.AddSeconds(i)), reopened.ReadAll().Select(r => r.ReceivedAt));
    }

    [Fact]
    public void A_segment_is_closed_once_its_records_span_segment_span()
    {
        var options = new WriteAheadLogOptions { SegmentSpan = TimeSpan.FromMinutes(10) };
        using (var wal = WriteAheadLog.Open(_dir, options))
        {
            foreach (var minutes in new[] { 0, 5, 9, 10, 19, 25 })
                wal.Append(Record(IngestKind.RatingMark, s_t0.AddMinutes(minutes), "", []));
            Assert.Equal(3, wal.SegmentCount);
        }

        var bySegment = SegmentFiles().Select(f => ReadSegment(f).Select(r => (int)(r.ReceivedAt - s_t0).TotalMinutes).ToArray()).ToList();
        Assert.Equal([[0, 5, 9], [10, 19], [25]], bySegment);
    }

    [Fact]
    public void Compaction_deletes_old_segments_rewrites_those_with_wanted_records_and_keeps_the_current_one()
    {
        var options = new WriteAheadLogOptions { SegmentSpan = TimeSpan.FromMinutes(10) };
        // Segment 1: 12:00–12:05, nothing wanted. Segment 2: 12:10–12:15, one wanted record. Segment 3: 12:20, all wanted.
        // Segment 4: 12:30–12:40, newer than the horizon. Segment 5 (being written): 12:40, older than a later horizon.
        var wanted = Record(IngestKind.Events, s_t0.AddMinutes(12), "keep", """[{"type": "workload_started"}]"""u8.ToArray());
        var allWanted = Record(IngestKind.Events, s_t0.AddMinutes(20), "keep", [1, 2, 3]);
        using var wal = WriteAheadLog.Open(_dir, options);
        wal.Append(Record(IngestKind.RemoteWrite, s_t0, "", new byte[500]));
        wal.Append(Record(IngestKind.RatingMark, s_t0.AddMinutes(5), "", []));
        wal.Append(Record(IngestKind.RemoteWrite, s_t0.AddMinutes(10), "", new byte[500]));
        wal.Append(wanted);
        wal.Append(Record(IngestKind.RatingMark, s_t0.AddMinutes(15), "", []));
        wal.Append(allWanted);
        wal.Append(Record(IngestKind.RemoteWrite, s_t0.AddMinutes(30), "", new byte[500]));
        var current = Record(IngestKind.RemoteWrite, s_t0.AddMinutes(40), "", new byte[500]);
        wal.Append(current);
        Assert.Equal(5, wal.SegmentCount);
        var before = wal.Bytes;
        var segment3 = File.ReadAllBytes(Path.Combine(_dir, "00000003.wal"));

        var freed = wal.Compact(s_t0.AddMinutes(25), r => r.Source == "keep");

        Assert.Equal(["00000002.wal", "00000003.wal", "00000004.wal", "00000005.wal"], SegmentFiles().Select(Path.GetFileName));
        AssertSame([wanted], ReadSegment(Path.Combine(_dir, "00000002.wal")));
        Assert.Equal(8 + RecordBytes(wanted), new FileInfo(Path.Combine(_dir, "00000002.wal")).Length);
        Assert.Equal(segment3, File.ReadAllBytes(Path.Combine(_dir, "00000003.wal"))); // nothing to free: left alone
        Assert.Equal(before - freed, wal.Bytes);
        Assert.Equal(SegmentFiles().Sum(f => new FileInfo(f).Length), wal.Bytes);
        Assert.Equal(4, wal.SegmentCount);

        // A horizon past everything frees every closed segment but never the one being written.
        wal.Compact(s_t0.AddHours(1), _ => false);
        Assert.Equal(["00000005.wal"], SegmentFiles().Select(Path.GetFileName));
        Assert.Equal(1, wal.SegmentCount);
        wal.Append(Record(IngestKind.RatingMark, s_t0.AddMinutes(41), "", []));
        Assert.Equal(2, ReadSegment(Path.Combine(_dir, "00000005.wal")).Count);
    }

    [Fact]
    public void After_compaction_a_reopen_reads_exactly_the_kept_records_in_order()
    {
        var options = new WriteAheadLogOptions { SegmentSpan = TimeSpan.FromMinutes(1) };
        var all = Enumerable.Range(0, 12)
            .Select(i => Record(IngestKind.Events, s_t0.AddSeconds(30 * i), i % 3 == 0 ? "keep" : "drop", Encoding.UTF8.GetBytes($"[{i}]")))
            .ToList();
        using (var wal = WriteAheadLog.Open(_dir, options))
        {
            foreach (var record in all)
                wal.Append(record);
            Assert.True(wal.Compact(s_t0.AddMinutes(4), r => r.Source == "keep") > 0);
        }

        using var reopened = WriteAheadLog.Open(_dir, options);

        Assert.Equal(0, reopened.TruncatedOnOpen);
        var horizon = s_t0.AddMinutes(4);
        // Segments are 1 minute long: those ending before 12:04 keep only the wanted records, the later ones keep all.
        AssertSame([.. all.Where(r => r.Source == "keep" || r.ReceivedAt >= horizon)], [.. reopened.ReadAll()]);
    }

    private static IngestRecord Record(IngestKind kind, DateTimeOffset at, string source, byte[] body) => new(kind, at, source, body);

    private static List<IngestRecord> ThreeRecords() =>
    [
        Record(IngestKind.Events, s_t0, "", """[{"type": "node_started"}]"""u8.ToArray()),
        Record(IngestKind.RemoteWrite, s_t0.AddSeconds(1), "application/x-protobuf", new byte[64]),
        Record(IngestKind.Events, s_t0.AddSeconds(2), "", """[{"type": "workload_started", "padding": "0123456789012345678901234567890123456789"}]"""u8.ToArray()),
    ];

    private void WriteAll(IEnumerable<IngestRecord> records)
    {
        using var wal = WriteAheadLog.Open(_dir);
        foreach (var record in records)
            wal.Append(record);
    }

    /// <summary>A record's size on disk: length and CRC (8), kind (1), time (8), source length (2), source, body.</summary>
    private static int RecordBytes(IngestRecord record) => 8 + 1 + 8 + 2 + Encoding.UTF8.GetByteCount(record.Source) + record.Body.Length;

    private string[] SegmentFiles() => [.. Directory.GetFiles(_dir, "*.wal").Order(StringComparer.Ordinal)];

    /// <summary>One segment's records, read by opening a log on a copy of just that segment.</summary>
    private static List<IngestRecord> ReadSegment(string path)
    {
        var copy = Directory.CreateTempSubdirectory("burnrate-wal-segment-").FullName;
        try
        {
            File.Copy(path, Path.Combine(copy, "00000001.wal"));
            using var wal = WriteAheadLog.Open(copy);
            Assert.Equal(0, wal.TruncatedOnOpen);
            return [.. wal.ReadAll()];
        }
        finally
        {
            Directory.Delete(copy, recursive: true);
        }
    }

    private static void AssertSame(IReadOnlyList<IngestRecord> expected, IReadOnlyList<IngestRecord> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (var i = 0; i < expected.Count; i++)
        {
            Assert.Equal((expected[i].Kind, expected[i].ReceivedAt, expected[i].Source), (actual[i].Kind, actual[i].ReceivedAt, actual[i].Source));
            Assert.Equal(expected[i].Body.ToArray(), actual[i].Body.ToArray());
        }
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
