namespace Burnrate.Pricing;

/// <summary>A catalog file that cannot be read: names the file, the line and what was wrong.</summary>
public sealed class CatalogFormatException : Exception
{
    public CatalogFormatException()
    {
        File = "";
        Problem = "";
    }

    public CatalogFormatException(string message)
        : base(message)
    {
        File = "";
        Problem = message;
    }

    public CatalogFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
        File = "";
        Problem = message;
    }

    /// <summary>The file <paramref name="file"/> is wrong at <paramref name="line"/> (1-based; 0 if unknown).</summary>
    public CatalogFormatException(string file, int line, string problem, Exception? innerException = null)
        : base($"{file}:{line}: {problem}", innerException)
    {
        File = file;
        Line = line;
        Problem = problem;
    }

    /// <summary>The file, as given to the loader (a path, or <c>builtin:aws.yaml</c>).</summary>
    public string File { get; }

    /// <summary>1-based line of the problem, 0 if unknown.</summary>
    public int Line { get; }

    /// <summary>What was wrong, without the file and line.</summary>
    public string Problem { get; }
}
