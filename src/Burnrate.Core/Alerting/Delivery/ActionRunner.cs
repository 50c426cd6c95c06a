using System.Collections;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Burnrate.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Burnrate.Alerting.Delivery;

/// <summary>
/// Runs the <c>action</c> of a rule when its alert fires: an <c>exec</c> argv template or an <c>http</c> call,
/// dry-run unless configured otherwise, the command on the allowlist, label values substituted as whole argv elements
/// (never through a shell) and only from the alert's own labels. Every decision is audited. docs/alerts.md, "Actions".
/// </summary>
public sealed partial class ActionRunner
{
    private const int DetailLimit = 2048;
    private const int RememberedAlerts = 100_000;

    private readonly IActionAuditLog _audit;
    private readonly HttpClient? _http;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly HashSet<string> _done = new(StringComparer.Ordinal);
    private readonly Queue<string> _doneOrder = new();

    /// <param name="options">Allowlist, dry-run, timeout.</param>
    /// <param name="audit">Where every action is recorded.</param>
    /// <param name="http">The client for <c>http</c> actions; null refuses them.</param>
    /// <param name="time">Stamps audit entries and times out commands.</param>
    /// <param name="logger">Logs each action (the argv, never URLs' query strings).</param>
    public ActionRunner(ActionOptions options, IActionAuditLog audit, HttpClient? http = null, TimeProvider? time = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(audit);
        Options = options;
        _audit = audit;
        _http = http;
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>The allowlist, dry-run and timeout in force.</summary>
    public ActionOptions Options { get; }

    /// <summary>Runs, dry-runs or refuses the action of a firing alert, once per alert (fingerprint + startsAt), and audits it.</summary>
    public async Task RunAsync(AlertNotification alert, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(alert);
        if (alert.State != AlertState.Firing || alert.Action is null)
            return;
        var once = alert.Fingerprint + "|" + alert.StartsAt.UtcTicks.ToString(CultureInfo.InvariantCulture);
        if (!_done.Add(once))
            return;
        _doneOrder.Enqueue(once);
        if (_doneOrder.Count > RememberedAlerts)
            _done.Remove(_doneOrder.Dequeue());

        var why = $"{AlertPayloads.Status(alert.State)} {alert.Rule}: {(alert.Annotations.TryGetValue("summary", out var s) ? s : "")}".TrimEnd(' ', ':');
        var action = alert.Action;
        string what = "";
        try
        {
            var unknown = action.Keys.FirstOrDefault(k => k is not ("exec" or "http" or "dry_run"));
            if (unknown is not null)
                throw new ActionRefused($"unknown key action.{unknown}");
            var dryRun = Options.DryRun || (action.TryGetValue("dry_run", out var d) && IsTrue(d));
            if (action.TryGetValue("exec", out var exec) == action.ContainsKey("http"))
                throw new ActionRefused("an action names exactly one of exec or http");
            if (exec is not null)
            {
                what = exec as string ?? throw new ActionRefused("action.exec must be a string");
                var argv = Render(what, alert.Labels);
                what = string.Join(' ', argv);
                if (dryRun)
                {
                    await AuditAsync(alert, what, why, "dry_run", null, "dry run: nothing was started", ct).ConfigureAwait(false);
                    return;
                }
                var (code, output) = await ExecAsync(argv, ct).ConfigureAwait(false);
                await AuditAsync(alert, what, why, code == 0 ? "succeeded" : "failed", code, output, ct).ConfigureAwait(false);
                return;
            }
            var (method, url) = RenderHttp(action["http"], alert.Labels);
            what = method + " " + url.GetLeftPart(UriPartial.Path);
            if (dryRun)
            {
                await AuditAsync(alert, what, why, "dry_run", null, "dry run: nothing was sent", ct).ConfigureAwait(false);
                return;
            }
            if (_http is null)
                throw new ActionRefused("http actions are not enabled in this server");
            using var timeout = new CancellationTokenSource(Options.Timeout, _time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, timeout.Token);
            using var request = new HttpRequestMessage(new HttpMethod(method), url) { Content = new ByteArrayContent(AlertPayloads.Webhook([alert], null)) };
            request.Content.Headers.ContentType = new("application/json");
            try
            {
                using var response = await _http.SendAsync(request, linked.Token).ConfigureAwait(false);
                await AuditAsync(alert, what, why, response.IsSuccessStatusCode ? "succeeded" : "failed", (int)response.StatusCode, "", ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is HttpRequestException || (e is OperationCanceledException && !ct.IsCancellationRequested))
            {
                await AuditAsync(alert, what, why, "failed", null, e is HttpRequestException h ? "network error: " + h.HttpRequestError : "timeout", ct).ConfigureAwait(false);
            }
        }
        catch (ActionRefused refused)
        {
            Log.Refused(_logger, alert.Rule, refused.Message);
            await AuditAsync(alert, what, why, "refused", null, refused.Message, ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Checks a rule's <c>action</c> map when the config loads, without labels: its keys, exactly one of <c>exec</c> or
    /// <c>http</c>, and for <c>exec</c> a literal first token on <c>actions.allow</c>. Returns what is wrong, or null.
    /// Values are still checked when the alert fires (they come from its labels).
    /// </summary>
    public static string? Validate(IReadOnlyDictionary<string, object> action, ActionOptions options)
    {
        ArgumentNullException.ThrowIfNull(action);
        ArgumentNullException.ThrowIfNull(options);
        var unknown = action.Keys.FirstOrDefault(k => k is not ("exec" or "http" or "dry_run"));
        if (unknown is not null)
            return $"unknown key action.{unknown} (accepted: exec, http, dry_run)";
        if (action.ContainsKey("exec") == action.ContainsKey("http"))
            return "an action names exactly one of exec or http";
        if (!action.TryGetValue("exec", out var exec))
            return AsMap(action["http"]) is { } http && http.ContainsKey("url") ? null : "action.http must be a map with url (and method)";
        if (exec is not string template)
            return "action.exec must be a string";
        var first = template.Split(' ', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault();
        if (first is null)
            return "action.exec is empty";
        if (first.Contains('{', StringComparison.Ordinal) || first.Contains('}', StringComparison.Ordinal))
            return $"the command '{first}' must be written literally, not substituted";
        return options.Allow.Contains(first, StringComparer.Ordinal) ? null : $"the command '{first}' is not on actions.allow";
    }

    /// <summary>
    /// The argv of an exec template: split on spaces, the first token literal and allowlisted, each <c>{label}</c>
    /// replaced inside its token by a safe value of one of the alert's labels.
    /// </summary>
    internal string[] Render(string template, IReadOnlyDictionary<string, string> labels)
    {
        var tokens = template.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (tokens.Length == 0)
            throw new ActionRefused("action.exec is empty");
        if (tokens[0].Contains('{', StringComparison.Ordinal) || tokens[0].Contains('}', StringComparison.Ordinal))
            throw new ActionRefused($"the command '{tokens[0]}' must be written literally, not substituted");
        if (!Options.Allow.Contains(tokens[0], StringComparer.Ordinal))
            throw new ActionRefused($"the command '{tokens[0]}' is not on actions.allow");
        var argv = new string[tokens.Length];
        argv[0] = tokens[0];
        for (var i = 1; i < tokens.Length; i++)
            argv[i] = Substitute(tokens[i], labels, escape: false);
        return argv;
    }

    private static (string Method, Uri Url) RenderHttp(object? section, IReadOnlyDictionary<string, string> labels)
    {
        var map = AsMap(section) ?? throw new ActionRefused("action.http must be a map with url (and method)");
        var unknown = map.Keys.FirstOrDefault(k => k is not ("url" or "method"));
        if (unknown is not null)
            throw new ActionRefused($"unknown key action.http.{unknown}");
        var method = (map.TryGetValue("method", out var m) ? m as string : "POST")?.ToUpperInvariant() ?? "POST";
        if (method is not ("POST" or "PUT" or "DELETE" or "PATCH" or "GET"))
            throw new ActionRefused($"action.http.method '{method}' is not one of GET, POST, PUT, PATCH, DELETE");
        var template = map.TryGetValue("url", out var u) && u is string text ? text : throw new ActionRefused("action.http.url is required");
        var rendered = Substitute(template, labels, escape: true);
        if (!Uri.TryCreate(rendered, UriKind.Absolute, out var url) || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps))
            throw new ActionRefused("action.http.url is not an http(s) URL");
        return (method, url);
    }

    private static string Substitute(string token, IReadOnlyDictionary<string, string> labels, bool escape)
    {
        var result = Placeholder().Replace(token, match =>
        {
            var name = match.Groups[1].Value;
            // Only the alert's own labels: its scope. A label it does not carry is refused, never run empty.
            if (!labels.TryGetValue(name, out var value))
                throw new ActionRefused($"{{{name}}} is not a label of this alert (outside the rule's scope)");
            if (!SafeValue().IsMatch(value))
                throw new ActionRefused($"the value of label '{name}' is refused: shell syntax, spaces or a leading '-' are not substituted");
            return escape ? Uri.EscapeDataString(value) : value;
        });
        if (result.Contains('{', StringComparison.Ordinal) || result.Contains('}', StringComparison.Ordinal))
            throw new ActionRefused($"'{token}' has a malformed placeholder");
        return result;
    }

    private async Task<(int Code, string Output)> ExecAsync(string[] argv, CancellationToken ct)
    {
        var info = new ProcessStartInfo(argv[0]) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        for (var i = 1; i < argv.Length; i++)
            info.ArgumentList.Add(argv[i]);
        var output = new StringBuilder();
        using var process = new Process { StartInfo = info };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (-1, "could not start: " + e.Message);
        }
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var timeout = new CancellationTokenSource(Options.Timeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, timeout.Token);
        try
        {
            await process.WaitForExitAsync(linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            return (process.ExitCode, Tail(output) + "\nkilled: it ran past actions.timeout");
        }
        return (process.ExitCode, Tail(output));
    }

    private static string Tail(StringBuilder output)
    {
        lock (output)
        {
            var text = output.ToString();
            return text.Length <= DetailLimit ? text : text[^DetailLimit..];
        }
    }

    private async Task AuditAsync(AlertNotification alert, string what, string why, string outcome, int? code, string detail, CancellationToken ct)
    {
        Log.Action(_logger, alert.Rule, outcome, what, code);
        await _audit.AppendAuditAsync(new ActionAuditEntry(_time.GetUtcNow(), alert.Rule, alert.Fingerprint, what, why, outcome, code, detail), ct).ConfigureAwait(false);
    }

    private static bool IsTrue(object? value) => value is true || (value is string text && bool.TryParse(text, out var b) && b);

    private static Dictionary<string, object?>? AsMap(object? value) => value switch
    {
        IReadOnlyDictionary<string, object> typed => typed.ToDictionary(p => p.Key, p => (object?)p.Value, StringComparer.Ordinal),
        IDictionary untyped => untyped.Keys.Cast<object>().ToDictionary(k => k.ToString() ?? "", k => untyped[k], StringComparer.Ordinal),
        _ => null,
    };

    [GeneratedRegex(@"\{([A-Za-z_][A-Za-z0-9_]*)\}")]
    private static partial Regex Placeholder();

    // Letters, digits and . _ : / @ = + , - only, never first a '-': nothing a shell or the command's option parser reads.
    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._:/@=+,-]*$")]
    private static partial Regex SafeValue();

    private sealed class ActionRefused(string message) : Exception(message);

    private static partial class Log
    {
        [LoggerMessage(EventId = 10, Level = LogLevel.Warning, Message = "Action of rule '{Rule}': {Outcome}: {What} (code {Code})")]
        public static partial void Action(ILogger logger, string rule, string outcome, string what, int? code);

        [LoggerMessage(EventId = 11, Level = LogLevel.Warning, Message = "Action of rule '{Rule}' refused: {Reason}")]
        public static partial void Refused(ILogger logger, string rule, string reason);
    }
}
