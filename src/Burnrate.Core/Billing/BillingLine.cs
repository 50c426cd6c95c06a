using System.Text.Json;

namespace Burnrate.Billing;

/// <summary>
/// One line of a provider's bill as read from a FOCUS file, typed. Amounts are exact decimals in the billing
/// currency as the file wrote them (FOCUS amounts carry more decimals than a nano-dollar); <see cref="BilledMoney"/>
/// and <see cref="EffectiveMoney"/> round them to <see cref="Money"/> for comparison with the ledger.
/// </summary>
/// <remarks>Each parameter after <c>SourceRow</c> (the data row in its file, 1 = the first after the header) is the FOCUS column of the same name (<c>Provider</c> is ProviderName, <c>RegionId</c> RegionId, ...).</remarks>
public sealed record BillingLine(
    long SourceRow,
    string Provider,
    string BillingAccountId,
    string? SubAccountId,
    string? ResourceId,
    string? ResourceName,
    string? ResourceType,
    string? RegionId,
    string? AvailabilityZone,
    string ServiceName,
    string? ServiceCategory,
    string? SkuId,
    string ChargeCategory,
    string? PricingCategory,
    string? ChargeDescription,
    DateTimeOffset ChargePeriodStart,
    DateTimeOffset ChargePeriodEnd,
    decimal BilledCost,
    decimal EffectiveCost,
    decimal? ListCost,
    decimal? ContractedCost,
    decimal? ConsumedQuantity,
    string? ConsumedUnit,
    string BillingCurrency,
    string? Tags)
{
    /// <summary><see cref="BilledCost"/> rounded to the nano-dollar.</summary>
    public Money BilledMoney => Money.FromDollars(BilledCost);

    /// <summary><see cref="EffectiveCost"/> rounded to the nano-dollar.</summary>
    public Money EffectiveMoney => Money.FromDollars(EffectiveCost);

    /// <summary>The value of the first of <c>team</c>, <c>Team</c>, <c>burnrate.team</c> in <see cref="Tags"/>, or null.</summary>
    public string? Team => Tag("team") ?? Tag("Team") ?? Tag("burnrate.team");

    /// <summary>The value of a tag (a key of the <see cref="Tags"/> JSON object), or null when absent or not JSON.</summary>
    public string? Tag(string key)
    {
        if (string.IsNullOrEmpty(Tags))
            return null;
        try
        {
            using var document = JsonDocument.Parse(Tags);
            if (document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty(key, out var value))
                return value.ValueKind == JsonValueKind.String ? value.GetString() : value.GetRawText();
        }
        catch (JsonException)
        {
        }
        return null;
    }
}
