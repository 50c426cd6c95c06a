using System.Globalization;
using System.Text.Json;
using Burnrate.Reporting;
using Microsoft.AspNetCore.Http;

namespace Burnrate.Server;

/// <summary>How the read endpoints write JSON: money as exact decimal strings with nine decimals, times in RFC 3339 UTC.</summary>
internal static class ApiJson
{
    public const string ContentType = "application/json; charset=utf-8";

    /// <summary>An indented JSON document written by <paramref name="write"/>.</summary>
    public static IResult Document(Action<Utf8JsonWriter> write)
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
            write(json);
        return Results.Bytes(stream.ToArray(), ContentType);
    }

    /// <summary>Dollars, exact to the nano-dollar (<c>495.360000000</c>).</summary>
    public static string Usd(Money amount) => MoneyText.Exact(amount);

    /// <summary>Dollars per hour, exact to the nano-dollar.</summary>
    public static string Usd(HourlyRate rate) => Usd(rate.DollarsPerHour);

    /// <summary>A decimal amount with nine decimals (rounded half away from zero past the ninth).</summary>
    public static string Usd(decimal dollars) =>
        decimal.Round(dollars, 9, MidpointRounding.AwayFromZero).ToString("0.000000000", CultureInfo.InvariantCulture);

    public static string Time(DateTimeOffset instant) => TimeExpression.Format(instant);

    public static void WriteTimeOrNull(Utf8JsonWriter json, string name, DateTimeOffset? instant)
    {
        if (instant is { } t)
            json.WriteString(name, Time(t));
        else
            json.WriteNull(name);
    }

    /// <summary>The 503 of an endpoint that reads the live burn on a server with no rating pipeline.</summary>
    public static IResult NoLiveRating() =>
        Results.Problem(detail: "this server does not rate live input (no rating pipeline is running)", statusCode: StatusCodes.Status503ServiceUnavailable, title: "No live rating");

    /// <summary>A 400 problem details response naming what was wrong.</summary>
    public static IResult BadRequest(string title, string detail) =>
        Results.Problem(detail: detail, statusCode: StatusCodes.Status400BadRequest, title: title);

    /// <summary>The answer when a query string names a parameter the endpoint does not take, or null when all are known.</summary>
    public static IResult? RefuseUnknownParameters(IQueryCollection query, string title, params string[] accepted)
    {
        foreach (var key in query.Keys)
        {
            if (!accepted.Contains(key, StringComparer.OrdinalIgnoreCase))
                return BadRequest(title, $"unknown query parameter '{key}'; accepted: {string.Join(", ", accepted)}");
        }
        return null;
    }

    /// <summary>Parses an optional time parameter (RFC 3339 or relative); false with a problem when it is malformed.</summary>
    public static bool TryTime(IQueryCollection query, string name, DateTimeOffset now, string title, out DateTimeOffset? value, out IResult? problem)
    {
        value = null;
        problem = null;
        if (query[name].LastOrDefault() is not { } text)
            return true;
        if (TimeExpression.TryParse(text, now, out var t))
        {
            value = t;
            return true;
        }
        problem = BadRequest(title, $"{name}: '{text}' is not a time (RFC 3339 like 2025-06-01T00:00:00Z, or relative like -15m, -7d, now)");
        return false;
    }
}
