using Burnrate.Simulation.Internal;
using YamlDotNet.Core;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace Burnrate.Simulation;

/// <summary>Reads scenario files (YAML, snake_case keys; the format is in <c>docs/simulator.md</c>).</summary>
public static class ScenarioFile
{
    private static readonly IDeserializer s_deserializer = new DeserializerBuilder()
        .WithNamingConvention(UnderscoredNamingConvention.Instance)
        .Build();

    /// <summary>Reads and validates the scenario file at <paramref name="path"/>.</summary>
    /// <exception cref="ScenarioFormatException">The file is not valid YAML or a field is wrong; the message names the file and the field.</exception>
    public static Scenario Load(string path) => Parse(File.ReadAllText(path), Path.GetFileName(path));

    /// <summary>Parses and validates scenario YAML; <paramref name="sourceName"/> names it in error messages.</summary>
    /// <exception cref="ScenarioFormatException">The text is not valid YAML or a field is wrong.</exception>
    public static Scenario Parse(string yaml, string sourceName)
    {
        ScenarioDocument? doc;
        try
        {
            doc = s_deserializer.Deserialize<ScenarioDocument>(yaml);
        }
        catch (YamlException e)
        {
            // YamlDotNet's own message names the property or token; prefix the file and position.
            var inner = e.InnerException?.Message ?? e.Message;
            var reason = e.Message == inner ? e.Message : $"{e.Message} {inner}";
            throw new ScenarioFormatException($"{sourceName}: line {e.Start.Line}, column {e.Start.Column}: {Shorten(reason)}", e);
        }
        if (doc is null)
            throw new ScenarioFormatException($"{sourceName}: the file is empty");
        var plan = ScenarioCompiler.Compile(doc, sourceName, out var id, out var title, out var description, out var signal);
        return new Scenario(new ScenarioInfo(id, title, description, signal, doc.Starts?.Trim() ?? ""), sourceName, plan);
    }

    // YamlDotNet names our internal document types; users know the fields, not the classes.
    private static string Shorten(string message) =>
        message.Replace("Burnrate.Simulation.Internal.", "", StringComparison.Ordinal)
            .Replace("Document'", "'", StringComparison.Ordinal);
}
