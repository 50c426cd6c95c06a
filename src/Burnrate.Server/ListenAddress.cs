using System.Globalization;
using System.Net;

namespace Burnrate.Server;

/// <summary>Parsing of the <c>--listen</c> address, which must be a loopback address while there are no API keys (docs/security.md).</summary>
public static class ListenAddress
{
    /// <summary>
    /// Parses <c>HOST:PORT</c> where HOST is an IPv4 address, a bracketed IPv6 address or <c>localhost</c>, and
    /// refuses addresses other than loopback with a message saying why.
    /// </summary>
    public static bool TryParse(string? text, out IPEndPoint endpoint, out string? error) => TryParse(text, allowNonLoopback: false, out endpoint, out error);

    /// <summary>
    /// Parses <c>HOST:PORT</c>; addresses other than loopback (<c>0.0.0.0</c>, <c>[::]</c>, a NIC's address) only when
    /// <paramref name="allowNonLoopback"/> is set, as it is when API keys are configured.
    /// </summary>
    public static bool TryParse(string? text, bool allowNonLoopback, out IPEndPoint endpoint, out string? error)
    {
        endpoint = new IPEndPoint(IPAddress.Loopback, 0);
        error = null;
        var colon = text?.LastIndexOf(':') ?? -1;
        if (text is null || colon <= 0 || colon == text.Length - 1)
        {
            error = $"listen address '{text}' is not HOST:PORT (e.g. {BurnrateServerOptions.DefaultListen})";
            return false;
        }
        var host = text[..colon].Trim();
        if (host.StartsWith('[') && host.EndsWith(']'))
            host = host[1..^1];
        if (!int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port > IPEndPoint.MaxPort)
        {
            error = $"listen address '{text}' has no valid port (0-65535)";
            return false;
        }
        IPAddress? address;
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase))
            address = IPAddress.Loopback;
        else if (!IPAddress.TryParse(host, out address))
        {
            error = $"listen address '{text}' does not start with an IP address or localhost";
            return false;
        }
        if (!allowNonLoopback && !IPAddress.IsLoopback(address))
        {
            error = $"refusing to listen on {text}: without API keys anyone reaching it would see every cost, so Burnrate serves loopback only (127.0.0.1, [::1], localhost); configure auth.keys (docs/security.md) to listen on other addresses";
            return false;
        }
        endpoint = new IPEndPoint(address, port);
        return true;
    }
}
