namespace Burnrate.Billing;

/// <summary>The FOCUS versions the importer reads.</summary>
public enum FocusVersion
{
    /// <summary>FOCUS 1.0.</summary>
    V1_0,
    /// <summary>FOCUS 1.1.</summary>
    V1_1,
    /// <summary>FOCUS 1.2.</summary>
    V1_2,
}

/// <summary>One column of the FOCUS cost and usage dataset.</summary>
/// <param name="Id">The column id as a file's header spells it.</param>
/// <param name="Introduced">The first version (of those read here) that defines it.</param>
/// <param name="Mandatory">Feature level Mandatory: a file of a version that defines it must have it.</param>
/// <param name="AllowsNulls">Whether a value may be null.</param>
public sealed record FocusColumn(string Id, FocusVersion Introduced, bool Mandatory, bool AllowsNulls);

/// <summary>
/// The FOCUS 1.0–1.2 columns, from the specification's column definitions (feature level and nullability are the
/// same in all three versions for every column they share). <c>FocusColumnTableTests</c> checks this table against
/// the spec tables in <c>../shared/data/focus/spec/</c> so the two cannot drift apart.
/// </summary>
public static class FocusColumns
{
    /// <summary>Every column of FOCUS 1.2, in the order 1.0, then the 1.1 and 1.2 additions.</summary>
    public static IReadOnlyList<FocusColumn> All { get; } =
    [
        new("AvailabilityZone", FocusVersion.V1_0, Mandatory: false, AllowsNulls: true),
        new("BilledCost", FocusVersion.V1_0, Mandatory: true, AllowsNulls: false),
        new("BillingAccountId", FocusVersion.V1_0, Mandatory: true, AllowsNulls: false),
        new("BillingAccountName", FocusVersion.V1_0, Mandatory: true, AllowsNulls: true),
        new("BillingCurrency", FocusVersion.V1_0, Mandatory: true, AllowsNulls: false),
        new("BillingPeriodEnd", FocusVersion.V1_0, Mandatory: true, AllowsNulls: false),
        new("BillingPeriodStart", FocusVersion.V1_0, Mandatory: true, AllowsNulls: false),
        new("ChargeCategory", FocusVersion.V1_0, Mandatory: true, AllowsNulls: false),
        new("ChargeClass", FocusVersion.V1_0, Mandatory: true, AllowsNulls: true),
        new("ChargeDescription", FocusVersion.V1_0, Mandatory: true, AllowsNulls: true),
        new("ChargeFrequency", FocusVersion.V1_0, Mandatory: false, AllowsNulls: false),
        new("ChargePeriodEnd", FocusVersion.V1_0, Mandatory: true, AllowsNulls: false),
        new("ChargePeriodStart", FocusVersion.V1_0, Mandatory: true, AllowsNulls: false),
        new("CommitmentDiscountCategory", FocusVersion.V1_0, Mandatory: false, AllowsNulls: true),
        new("CommitmentDiscountId", FocusVersion.V1_0, Mandatory: false, AllowsNulls: true),
        new("CommitmentDiscountName", FocusVersion.V1_0, Mandatory: false, AllowsNulls: true),
        new("CommitmentDiscountStatus", FocusVersion.V1_0, Mandatory: false, AllowsNulls: true),
        new("CommitmentDiscountType", FocusVersion.V1_0, Mandatory: false, AllowsNulls: true),
        new("ConsumedQuantity", FocusVersion.V1_0, Mandatory: false, AllowsNulls: true),
        new("ConsumedUnit", FocusVersion.V1_0, Mandatory: false, AllowsNulls: true),
        new("ContractedCost", FocusVersion.V1_0, Mandatory: true, AllowsNulls: false),
        new("ContractedUnitPrice", FocusVersion.V1_0, Mandatory: false, AllowsNulls: true),
        new("EffectiveCost", FocusVersion.V1_0, Mandatory: true, AllowsNulls: false),
        new("InvoiceIssuerName", FocusVersion.V1_0, Mandatory: true, AllowsNulls: false),
        new("ListCost", FocusVersion.V1_0, Mandatory: true, AllowsNulls: false),
        new("ListUnitPrice", FocusVersion.V1_0, Mandatory: false, AllowsNulls: true),
        new("PricingCategory", FocusVersion.V1_0, Mandatory: false, AllowsNulls: true),
        new("PricingQuantity", FocusVersion.V1_0, Mandatory: true, AllowsNulls: true),
        new("PricingUnit", FocusVersion.V1_0, Mandatory: true, AllowsNulls: true),
        new("ProviderName", FocusVersion.V1_0, Mandatory: true, AllowsNulls: false),
        new("PublisherName", FocusVersion.V1_0, Mandatory: true, AllowsNulls: false),
        new("RegionId", FocusVersion.V1_0, Mandatory: false, AllowsNulls: true),
        new("RegionName", FocusVersion.V1_0, Mandatory: false, AllowsNulls: true),
        new("ResourceId", FocusVersion.V1_0, Mandatory: false, AllowsNulls: true),
        new("ResourceName", FocusVersion.V1_0, Mandatory: false, AllowsNulls: true),
        new("ResourceType", FocusVersion.V1_0, Mandatory: false, AllowsNulls: true),
        new("ServiceCategory", FocusVersion.V1_0, Mandatory: true, AllowsNulls: false),
        new("ServiceName", FocusVersion.V1_0, Mandatory: true, AllowsNulls: false),
        new("SkuId", FocusVersion.V1_0, Mandatory: false, AllowsNulls: true),
        new("SkuPriceId", FocusVersion.V1_0, Mandatory: false, AllowsNulls: true),
        new("SubAccountId", FocusVersion.V1_0, Mandatory: false, AllowsNulls: true),
        new("SubAccountName", FocusVersion.V1_0, Mandatory: false, AllowsNulls: true),
        new("Tags", FocusVersion.V1_0, Mandatory: false, AllowsNulls: true),
        new("CapacityReservationId", FocusVersion.V1_1, Mandatory: false, AllowsNulls: true),
        new("CapacityReservationStatus", FocusVersion.V1_1, Mandatory: false, AllowsNulls: true),
        new("CommitmentDiscountQuantity", FocusVersion.V1_1, Mandatory: false, AllowsNulls: true),
        new("CommitmentDiscountUnit", FocusVersion.V1_1, Mandatory: false, AllowsNulls: true),
        new("ServiceSubcategory", FocusVersion.V1_1, Mandatory: false, AllowsNulls: false),
        new("SkuMeter", FocusVersion.V1_1, Mandatory: false, AllowsNulls: true),
        new("SkuPriceDetails", FocusVersion.V1_1, Mandatory: false, AllowsNulls: true),
        new("BillingAccountType", FocusVersion.V1_2, Mandatory: false, AllowsNulls: false),
        new("InvoiceId", FocusVersion.V1_2, Mandatory: false, AllowsNulls: true),
        new("PricingCurrency", FocusVersion.V1_2, Mandatory: false, AllowsNulls: true),
        new("PricingCurrencyContractedUnitPrice", FocusVersion.V1_2, Mandatory: false, AllowsNulls: true),
        new("PricingCurrencyEffectiveCost", FocusVersion.V1_2, Mandatory: false, AllowsNulls: true),
        new("PricingCurrencyListUnitPrice", FocusVersion.V1_2, Mandatory: false, AllowsNulls: true),
        new("SubAccountType", FocusVersion.V1_2, Mandatory: false, AllowsNulls: true),
    ];

    private static readonly Dictionary<string, FocusColumn> s_byId = All.ToDictionary(c => c.Id, StringComparer.Ordinal);

    /// <summary>The column with this exact id, or null when FOCUS 1.2 has none.</summary>
    public static FocusColumn? Find(string id) => s_byId.GetValueOrDefault(id);

    /// <summary>The columns a version defines.</summary>
    public static IEnumerable<FocusColumn> Of(FocusVersion version) => All.Where(c => c.Introduced <= version);

    /// <summary>The mandatory columns of a version.</summary>
    public static IEnumerable<FocusColumn> MandatoryOf(FocusVersion version) => Of(version).Where(c => c.Mandatory);

    /// <summary>How a version is written: <c>1.0</c>, <c>1.1</c>, <c>1.2</c>.</summary>
    public static string Name(this FocusVersion version) => version switch
    {
        FocusVersion.V1_0 => "1.0",
        FocusVersion.V1_1 => "1.1",
        _ => "1.2",
    };

    /// <summary>Reads <c>1.0</c>, <c>1.1</c>, <c>1.2</c> (also <c>1.2-preview</c> and the like); null for anything else.</summary>
    public static FocusVersion? ParseVersion(string? text)
    {
        var t = text?.Trim() ?? "";
        if (t.StartsWith("1.0", StringComparison.Ordinal))
            return FocusVersion.V1_0;
        if (t.StartsWith("1.1", StringComparison.Ordinal))
            return FocusVersion.V1_1;
        if (t.StartsWith("1.2", StringComparison.Ordinal))
            return FocusVersion.V1_2;
        return null;
    }

    /// <summary>
    /// The version a header says it is: the newest version one of whose own columns it has (1.2 adds InvoiceId,
    /// PricingCurrency, ...; 1.1 adds ServiceSubcategory, SkuMeter, ...), else 1.0.
    /// </summary>
    public static FocusVersion DetectVersion(IEnumerable<string> header)
    {
        var version = FocusVersion.V1_0;
        foreach (var name in header)
        {
            if (Find(name) is { } column && column.Introduced > version)
                version = column.Introduced;
        }
        return version;
    }
}
