using Burnrate.Simulation.Internal;

namespace Burnrate.Simulation;

/// <summary>
/// A validated simulator scenario: a small fleet, its workloads and a timeline of what happens to them, at offsets
/// from the scenario's start. Load one with <see cref="ScenarioFile"/> or <see cref="ScenarioLibrary"/>; play it
/// with <see cref="FleetSimulator"/>.
/// </summary>
public sealed class Scenario
{
    internal Scenario(ScenarioInfo info, string sourceName, ScenarioPlan plan)
    {
        Info = info;
        SourceName = sourceName;
        Plan = plan;
    }

    /// <summary>Id, title, description and expected signal.</summary>
    public ScenarioInfo Info { get; }

    /// <summary>The scenario id (<c>s1</c>..<c>s13</c>, <c>baseline</c>, or a custom file's id).</summary>
    public string Id => Info.Id;

    /// <summary>The file or resource it was read from, as named in error messages.</summary>
    public string SourceName { get; }

    /// <summary>How long the story lasts from the scenario's start; everything still running then is stopped. <c>null</c>: forever.</summary>
    public TimeSpan? Duration => Plan.Duration;

    /// <summary>Nodes after repeats are expanded.</summary>
    public int NodeCount => Plan.Nodes.Count;

    /// <summary>Workloads after repeats are expanded.</summary>
    public int WorkloadCount => Plan.Workloads.Count;

    internal ScenarioPlan Plan { get; }

    /// <inheritdoc />
    public override string ToString() => $"{Id}: {Info.Title}";
}

/// <summary>What a scenario plays and what should catch it, for <c>burnrate demo --help</c> and the docs.</summary>
/// <param name="Id">Scenario id, e.g. <c>s2</c>.</param>
/// <param name="Title">One line.</param>
/// <param name="Description">What happens, with its numbers.</param>
/// <param name="ExpectedSignal">What an alert (or report) should catch.</param>
/// <param name="Anchor">The wall-clock start it asks for (<c>friday 17:00</c>), or empty.</param>
public sealed record ScenarioInfo(string Id, string Title, string Description, string ExpectedSignal, string Anchor);

/// <summary>A scenario file that cannot be played; <see cref="Exception.Message"/> names the file and every bad field.</summary>
public sealed class ScenarioFormatException : Exception
{
    /// <summary>Creates the exception from the problems found in <paramref name="source"/>.</summary>
    public ScenarioFormatException(string source, IReadOnlyList<string> problems)
        : base(problems.Count == 1 ? problems[0] : $"{source}: {problems.Count} problems:{Environment.NewLine}{string.Join(Environment.NewLine, problems)}")
    {
        Source = source;
        Problems = problems;
    }

    /// <summary>Creates the exception for a problem that is not tied to a field.</summary>
    public ScenarioFormatException(string message) : base(message)
    {
        Problems = [message];
    }

    /// <summary>Creates the exception for a problem that is not tied to a field.</summary>
    public ScenarioFormatException(string message, Exception innerException) : base(message, innerException)
    {
        Problems = [message];
    }

    /// <summary>Creates an empty exception.</summary>
    public ScenarioFormatException() : this("Invalid scenario file.")
    {
    }

    /// <summary>Each problem, as <c>FILE: FIELD.PATH: what is wrong</c>.</summary>
    public IReadOnlyList<string> Problems { get; }
}
