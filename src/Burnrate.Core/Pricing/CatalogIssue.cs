namespace Burnrate.Pricing;

/// <summary>What was odd about a row of a foreign catalog, and so what the loader did.</summary>
public enum CatalogIssueKind
{
    /// <summary>The file has CRLF line ends; read as LF. Recorded once per file.</summary>
    CrlfLineEnds,

    /// <summary>A row that cannot be read (wrong field count, bad number, no instance type); skipped.</summary>
    MalformedRow,

    /// <summary>No on-demand price; the row is skipped (its spot price too: a spot price alone cannot be checked).</summary>
    MissingPrice,

    /// <summary>No spot price; no spot entry is made (the provider does not sell spot there, or did not say).</summary>
    MissingSpotPrice,

    /// <summary>Spot price above on-demand; the spot entry is capped at the on-demand price.</summary>
    SpotAboveOnDemand,

    /// <summary>The accelerator count disagreed with the instance name or GpuInfo; the count was corrected.</summary>
    AcceleratorCountFixed,

    /// <summary>A GCP host row joined with its accelerator row: price = machine + accelerators.</summary>
    GpuPricedApart,

    /// <summary>A GCP GPU host row with no accelerator row in its zone; skipped, as its price would leave out the GPUs.</summary>
    GpuHostWithoutAccelerator,

    /// <summary>A GCP accelerator row no host row in the loaded files used; it makes no entry by itself.</summary>
    UnusedAcceleratorRow,
}

/// <summary>One diagnostic from loading a foreign catalog file.</summary>
/// <param name="File">The file, as it appears in price sources (e.g. <c>v9/aws/vms.csv</c>).</param>
/// <param name="Line">1-based line of the row in the file (the header is line 1).</param>
/// <param name="Kind">What was odd.</param>
/// <param name="Message">What was odd and what the loader did, in words.</param>
public sealed record CatalogIssue(string File, int Line, CatalogIssueKind Kind, string Message);

/// <summary>Prices read from foreign catalog files, and what was done about their quirks.</summary>
/// <param name="Prices">On-demand and spot entries.</param>
/// <param name="Issues">Diagnostics, in file and line order.</param>
public sealed record SkyPilotCatalog(IReadOnlyList<InstancePrice> Prices, IReadOnlyList<CatalogIssue> Issues)
{
    /// <summary>A new price book holding every price read.</summary>
    public PriceBook ToPriceBook() => new(Prices);
}
