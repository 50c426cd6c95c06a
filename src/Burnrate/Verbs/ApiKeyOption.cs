using System.CommandLine;
using System.Net;
using System.Net.Http.Headers;

namespace Burnrate.Cli.Verbs;

/// <summary>
/// <c>--api-key-env NAME</c> of the verbs that ask a running server (<c>top</c>, <c>report --server</c>): the API key is
/// read from that environment variable (default <c>BURNRATE_API_KEY</c>), never from the command line, where
/// <c>ps</c> and shell history would show it. Sent as <c>Authorization: Bearer</c>; docs/security.md.
/// </summary>
internal static class ApiKeyOption
{
    /// <summary>The variable read when <c>--api-key-env</c> is not given.</summary>
    public const string DefaultVariable = "BURNRATE_API_KEY";

    public static Option<string> Create() => new("--api-key-env")
    {
        Description = $"Environment variable holding the API key sent to the server (unset or empty: no key)",
        HelpName = "NAME",
        DefaultValueFactory = _ => DefaultVariable,
    };

    /// <summary>The key in the named variable, or null when it is unset or empty.</summary>
    public static string? Read(CliServices services, string variable)
    {
        var key = services.GetEnvironmentVariable(variable)?.Trim();
        return string.IsNullOrEmpty(key) ? null : key;
    }

    /// <summary>Adds the key to a request to the server.</summary>
    public static void Apply(HttpRequestMessage request, string? key)
    {
        if (key is not null)
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
    }

    /// <summary>A hint for 401 and 403 answers: where the key comes from.</summary>
    public static string Hint(HttpStatusCode status, string? key) => status switch
    {
        HttpStatusCode.Unauthorized when key is null => $" (the server wants an API key: set {DefaultVariable}, or name the variable with --api-key-env)",
        HttpStatusCode.Unauthorized => " (the server does not know this API key)",
        HttpStatusCode.Forbidden => " (the API key lacks the read scope)",
        _ => "",
    };
}
