namespace Burnrate.Tests.Support;

/// <summary>Finds the shared SkyPilot catalog files the pricing tests read.</summary>
internal static class PricingTestPaths
{
    /// <summary>The repository root: the first directory up from the test binary holding <c>Burnrate.slnx</c>.</summary>
    public static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Burnrate.slnx")))
                return dir.FullName;
        }

        throw new InvalidOperationException("No Burnrate.slnx above " + AppContext.BaseDirectory);
    }

    /// <summary>
    /// <c>../shared/data/skypilot-catalog</c> next to the repository. Missing: fails under <c>CI=true</c>, else the
    /// test is skipped with the reason.
    /// </summary>
    public static string SkyPilotCatalogDir()
    {
        var dir = Path.GetFullPath(Path.Combine(RepoRoot(), "..", "shared", "data", "skypilot-catalog"));
        if (Directory.Exists(dir))
            return dir;
        var reason = $"SkyPilot catalog files not found at {dir}";
        if (string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase))
            Assert.Fail(reason);
        Assert.Skip(reason);
        return dir;
    }

    /// <summary>A file under the SkyPilot catalog directory, e.g. <c>v9/aws/vms.p-family-subset.csv</c>.</summary>
    public static string SkyPilotFile(string relative)
    {
        var path = Path.Combine(SkyPilotCatalogDir(), relative);
        Assert.True(File.Exists(path), $"missing {path}");
        return path;
    }
}
