namespace Burnrate.Tests.Support;

/// <summary>Finds the shared FOCUS files (<c>../shared/data/focus</c>) the billing tests read; never copied into the repository.</summary>
internal static class FocusTestPaths
{
    /// <summary>
    /// A file under <c>../shared/data/focus</c>, e.g. <c>focus_sample.csv</c>. Missing: fails under <c>CI=true</c>,
    /// else the test is skipped with the reason.
    /// </summary>
    public static string File(string relative)
    {
        var path = Path.GetFullPath(Path.Combine(PricingTestPaths.RepoRoot(), "..", "shared", "data", "focus", relative));
        if (System.IO.File.Exists(path))
            return path;
        var reason = $"FOCUS test data not found at {path}";
        if (string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase))
            Assert.Fail(reason);
        Assert.Skip(reason);
        return path;
    }

    /// <summary>The real FOCUS 1.0 sample: 1,000 rows of anonymized AWS, Microsoft and Oracle data for September 2024.</summary>
    public static string Sample => File("focus_sample.csv");
}
