using Burnrate.Billing;
using Burnrate.Tests.Support;

namespace Burnrate.Tests.Billing;

public sealed class FocusColumnTableTests
{
    [Theory]
    [InlineData(FocusVersion.V1_0, "spec/focus_columns_v1.0.csv")]
    [InlineData(FocusVersion.V1_1, "spec/focus_columns_v1.1.csv")]
    [InlineData(FocusVersion.V1_2, "spec/focus_columns_v1.2.csv")]
    public void The_embedded_column_table_matches_the_spec_table_of_each_version(FocusVersion version, string specFile)
    {
        var spec = ReadSpec(FocusTestPaths.File(specFile));

        var ours = FocusColumns.Of(version).ToDictionary(c => c.Id, c => (Mandatory: c.Mandatory, c.AllowsNulls));

        Assert.Equal(spec.Keys.Order(StringComparer.Ordinal), ours.Keys.Order(StringComparer.Ordinal));
        foreach (var (id, (featureLevel, allowsNulls)) in spec)
        {
            Assert.True(featureLevel == "Mandatory" == ours[id].Mandatory, $"{id}: feature level {featureLevel} in the spec");
            Assert.True(allowsNulls == "True" == ours[id].AllowsNulls, $"{id}: AllowsNulls {allowsNulls} in the spec");
        }
    }

    [Fact]
    public void The_version_is_detected_from_the_newest_column_a_header_has()
    {
        Assert.Equal(FocusVersion.V1_0, FocusColumns.DetectVersion(["BilledCost", "Id"]));
        Assert.Equal(FocusVersion.V1_1, FocusColumns.DetectVersion(["BilledCost", "ServiceSubcategory"]));
        Assert.Equal(FocusVersion.V1_2, FocusColumns.DetectVersion(["SkuMeter", "InvoiceId"]));
    }

    // The spec tables are plain CSV with quoted descriptions; only the first columns are needed.
    private static Dictionary<string, (string FeatureLevel, string AllowsNulls)> ReadSpec(string path)
    {
        var lines = File.ReadAllLines(path);
        var header = lines[0].Split(',');
        int id = Array.IndexOf(header, "ColumnId"), level = Array.IndexOf(header, "FeatureLevel"), nulls = Array.IndexOf(header, "AllowsNulls");
        Assert.True(id >= 0 && level > id && nulls > level && nulls < 6, "the spec table's first columns moved");
        return lines.Skip(1).Where(l => l.Length > 0).Select(l => l.Split(',')).ToDictionary(f => f[id], f => (f[level], f[nulls]));
    }
}
