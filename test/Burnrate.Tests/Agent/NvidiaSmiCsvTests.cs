using Burnrate.Agent;

namespace Burnrate.Tests.Agent;

/// <summary>The nvidia-smi outputs of telemetry-formats.md §6 ("nvidia-smi --query-gpu CSV"), read by the agent's parser.</summary>
public sealed class NvidiaSmiCsvTests
{
    private const string Uuid = "GPU-00000000-0000-0000-0000-000000000000"; // masked in the capture

    /// <summary>§6 "Real output": H100 80GB HBM3, driver 590.48.01, default <c>--format=csv</c> (header with units, values with units), columns re-ordered.</summary>
    private const string H100Capture = """
        timestamp, name, uuid, pci.bus_id, index, utilization.gpu [%], utilization.memory [%], memory.total [MiB], memory.used [MiB], memory.free [MiB], power.draw [W], power.draw.average [W], power.draw.instant [W], power.limit [W], temperature.gpu, clocks.current.sm [MHz], mig.mode.current
        2026/07/14 08:12:38.696, NVIDIA H100 80GB HBM3, GPU-00000000-0000-0000-0000-000000000000, 00000000:00:09.0, 0, 0 %, 0 %, 81559 MiB, 0 MiB, 81081 MiB, 69.85 W, 69.85 W, 69.62 W, 700.00 W, 41, 345 MHz, Disabled
        2026/07/14 08:12:53.353, NVIDIA H100 80GB HBM3, GPU-00000000-0000-0000-0000-000000000000, 00000000:00:09.0, 0, 100 %, 11 %, 81559 MiB, 19818 MiB, 61263 MiB, 631.95 W, 631.95 W, 625.68 W, 700.00 W, 59, 1980 MHz, Disabled
        """;

    [Fact]
    public void The_H100_capture_with_header_and_units_is_read_by_column_name()
    {
        var readout = NvidiaSmiCsv.Parse(H100Capture);

        Assert.Empty(readout.Problems);
        Assert.Equal(2, readout.Gpus.Count);
        Assert.Equal(
            new NvidiaSmiGpu(0, Uuid, "NVIDIA H100 80GB HBM3", "00000000:00:09.0", 100, 11, 19818, 61263, 81559, 631.95, 59, 1980, false),
            readout.Gpus[1]);
        Assert.Equal((0.0, 69.85, 41.0, 345.0), (readout.Gpus[0].UtilizationPercent, readout.Gpus[0].PowerWatts, readout.Gpus[0].TemperatureCelsius, readout.Gpus[0].SmClockMHz));
    }

    [Fact]
    public void The_same_GPU_in_MIG_mode_has_no_utilization()
    {
        // §6 "Same GPU with MIG enabled, under load". The reference elides the leading columns ("…"); the index, UUID
        // and name are those of the same capture.
        const string mig = """
            index, uuid, name, utilization.gpu [%], utilization.memory [%], memory.used [MiB], power.draw [W], mig.mode.current
            0, GPU-00000000-0000-0000-0000-000000000000, NVIDIA H100 80GB HBM3, [N/A], [N/A], 11125 MiB, 433.78 W, Enabled
            """;

        var gpu = Assert.Single(NvidiaSmiCsv.Parse(mig).Gpus);

        Assert.Equal((null, null, 11125, 433.78, true), (gpu.UtilizationPercent, gpu.MemoryUtilizationPercent, gpu.MemoryUsedMiB, gpu.PowerWatts, gpu.MigEnabled));
        Assert.Null(gpu.MemoryTotalMiB); // not a column of this output
    }

    [Fact]
    public void The_agents_own_query_without_header_and_units_is_read_in_field_order()
    {
        // The second row of the capture as the agent asks for it: its fields in NvidiaSmiCsv.Fields order, with
        // noheader,nounits, which leaves bare numbers (§6, derived from nounits semantics).
        const string row = "0, GPU-00000000-0000-0000-0000-000000000000, NVIDIA H100 80GB HBM3, 00000000:00:09.0, 100, 11, 19818, 61263, 81559, 631.95, 59, 1980, Disabled\n";

        var readout = NvidiaSmiCsv.Parse(row);

        Assert.Empty(readout.Problems);
        Assert.Equal(NvidiaSmiCsv.Parse(H100Capture).Gpus[1], Assert.Single(readout.Gpus));
        Assert.Equal(
            ["--query-gpu=index,uuid,name,pci.bus_id,utilization.gpu,utilization.memory,memory.used,memory.free,memory.total,power.draw,temperature.gpu,clocks.sm,mig.mode.current", "--format=csv,noheader,nounits"],
            NvidiaSmiCsv.Arguments);
    }

    [Fact]
    public void Placeholders_are_null_and_unreadable_rows_are_reported_without_losing_the_others()
    {
        // §6 parsing rules: [N/A] and [Not Supported] in every capture, [Unknown Error] and friends exist too; CRLF ends.
        const string output =
            "0, GPU-a, Tesla T4, 00000000:00:1E.0, 3, 0, 250, 14680, 15360, [Not Supported], 38, 585, [N/A]\r\n" +
            "1, GPU-b, Tesla T4, 00000000:00:1F.0, [Unknown Error], 0, 250, 14680, 15360, 27.5, 39, 585, [N/A]\r\n" +
            "2, GPU-c, Tesla T4\r\n" +
            "x, , Tesla T4, 00000000:00:20.0, 3, 0, 250, 14680, 15360, 27.5, 39, 585, [N/A]\r\n" +
            "4, GPU-e, Tesla T4, 00000000:00:21.0, lots, 0, 250, 14680, 15360, 27.5, 39, 585, Disabled\r\n\r\n";

        var readout = NvidiaSmiCsv.Parse(output);

        Assert.Equal(["GPU-a", "GPU-b", "GPU-e"], readout.Gpus.Select(g => g.Uuid));
        Assert.Equal((3.0, null, null), (readout.Gpus[0].UtilizationPercent, readout.Gpus[0].PowerWatts, readout.Gpus[0].MigEnabled));
        Assert.Null(readout.Gpus[1].UtilizationPercent);
        Assert.Null(readout.Gpus[2].UtilizationPercent);
        Assert.Equal(3, readout.Problems.Count);
        Assert.Contains("line 3: 3 values where 13 were expected", readout.Problems[0], StringComparison.Ordinal);
        Assert.Contains("line 4: no GPU index or UUID", readout.Problems[1], StringComparison.Ordinal);
        Assert.Contains("line 5: utilization.gpu 'lots' is not a number", readout.Problems[2], StringComparison.Ordinal);
    }
}
