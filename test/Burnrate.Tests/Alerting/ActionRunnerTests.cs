using Burnrate.Alerting;
using Burnrate.Alerting.Delivery;
using Burnrate.Storage.DuckDb;
using Microsoft.Extensions.Time.Testing;

namespace Burnrate.Tests.Alerting;

/// <summary>Rule actions against a real store: dry-run, the allowlist, safe substitution, scope, the audit log.</summary>
public sealed class ActionRunnerTests : IAsyncDisposable
{
    private static readonly DateTimeOffset s_now = new(2026, 11, 22, 15, 0, 0, TimeSpan.Zero);
    private readonly string _dir = Directory.CreateTempSubdirectory("burnrate-actions-").FullName;
    private readonly FakeTimeProvider _time = new(s_now);
    private DuckDbCostStore? _store;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private string Marker => Path.Combine(_dir, "ran.txt");

    /// <summary>A stand-in for scancel: appends its arguments, one run per line.</summary>
    private string Script()
    {
        if (OperatingSystem.IsWindows())
            Assert.Skip("the stand-in command is a POSIX shell script");
        var path = Path.Combine(_dir, "fake-scancel");
        File.WriteAllText(path, $"#!/bin/sh\necho \"$#:$*\" >> '{Marker}'\necho cancelled\n");
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    private async Task<ActionRunner> RunnerAsync(bool dryRun, params string[] allow)
    {
        _store = await DuckDbCostStore.OpenAsync(":memory:", ct: Ct);
        return new ActionRunner(new ActionOptions { Allow = allow, DryRun = dryRun }, _store, time: _time);
    }

    private static AlertNotification Alert(string exec, string jobId = "12345", bool? ruleDryRun = null)
    {
        var action = new Dictionary<string, object> { ["exec"] = exec };
        if (ruleDryRun is { } d)
            action["dry_run"] = d;
        return AlertDispatcherTests.Firing(labels: new() { ["alertname"] = "runaway-job", ["slurm_job_id"] = jobId, ["team"] = "vision" }, action: action);
    }

    [Fact]
    public async Task A_dry_run_only_logs_and_audits_what_would_have_run()
    {
        var script = Script();
        var runner = await RunnerAsync(dryRun: true, script);

        await runner.RunAsync(Alert($"{script} --signal=TERM {{slurm_job_id}}"), Ct);

        Assert.False(File.Exists(Marker), "a dry run started the command");
        var entry = Assert.Single(await _store!.GetAuditAsync(cancellationToken: Ct));
        Assert.Equal(("dry_run", $"{script} --signal=TERM 12345", "idle-gpu", s_now), (entry.Outcome, entry.What, entry.Rule, entry.At));
        Assert.Equal("firing idle-gpu: GPU idle for 30m", entry.Why);
    }

    [Fact]
    public async Task A_rule_asking_for_a_dry_run_is_not_run_even_when_actions_are_live()
    {
        var script = Script();
        var runner = await RunnerAsync(dryRun: false, script);

        await runner.RunAsync(Alert($"{script} {{slurm_job_id}}", ruleDryRun: true), Ct);

        Assert.False(File.Exists(Marker));
        Assert.Equal("dry_run", Assert.Single(await _store!.GetAuditAsync(cancellationToken: Ct)).Outcome);
    }

    [Fact]
    public async Task An_allowlisted_command_runs_once_with_its_values_substituted_as_argv()
    {
        var script = Script();
        var runner = await RunnerAsync(dryRun: false, script);
        var alert = Alert($"{script} --signal=TERM job={{slurm_job_id}}", jobId: "4242_1");

        await runner.RunAsync(alert, Ct);
        await runner.RunAsync(alert, Ct); // the same alert again: not run twice

        Assert.Equal(["2:--signal=TERM job=4242_1"], await File.ReadAllLinesAsync(Marker, Ct));
        var entry = Assert.Single(await _store!.GetAuditAsync(cancellationToken: Ct));
        Assert.Equal(("succeeded", 0), (entry.Outcome, entry.Code));
        Assert.Contains("cancelled", entry.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_command_off_the_allowlist_is_refused_and_audited()
    {
        var script = Script();
        var runner = await RunnerAsync(dryRun: false, "scancel");

        await runner.RunAsync(Alert($"{script} {{slurm_job_id}}"), Ct);

        Assert.False(File.Exists(Marker));
        var entry = Assert.Single(await _store!.GetAuditAsync(cancellationToken: Ct));
        Assert.Equal("refused", entry.Outcome);
        Assert.Contains("not on actions.allow", entry.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("123; touch /tmp/pwned")]
    [InlineData("$(reboot)")]
    [InlineData("`id`")]
    [InlineData("12 && rm -rf /")]
    [InlineData("--all")]
    [InlineData("a|b")]
    [InlineData("")]
    public async Task A_label_value_carrying_shell_syntax_or_an_option_is_refused_and_audited(string value)
    {
        var script = Script();
        var runner = await RunnerAsync(dryRun: false, script);

        await runner.RunAsync(Alert($"{script} {{slurm_job_id}}", jobId: value), Ct);

        Assert.False(File.Exists(Marker), "the command ran with " + value);
        var entry = Assert.Single(await _store!.GetAuditAsync(cancellationToken: Ct));
        Assert.Equal("refused", entry.Outcome);
        Assert.Contains("slurm_job_id", entry.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_template_naming_a_label_outside_the_alerts_scope_is_refused()
    {
        var script = Script();
        var runner = await RunnerAsync(dryRun: false, script);

        await runner.RunAsync(Alert($"{script} {{skypilot_cluster}}"), Ct);

        Assert.False(File.Exists(Marker));
        var entry = Assert.Single(await _store!.GetAuditAsync(cancellationToken: Ct));
        Assert.Equal("refused", entry.Outcome);
        Assert.Contains("{skypilot_cluster} is not a label of this alert", entry.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_dispatcher_runs_a_firing_alerts_action_and_not_a_resolved_one()
    {
        var script = Script();
        var runner = await RunnerAsync(dryRun: false, script);
        using var http = new HttpClient();
        await using var dispatcher = new AlertDispatcher(new DeliveryOptions(), http, _time, actions: runner);
        var firing = Alert($"{script} {{slurm_job_id}}");

        dispatcher.Publish([firing, AlertDispatcherTests.Resolved(firing, s_now)]);
        await dispatcher.StopAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(["1:12345"], await File.ReadAllLinesAsync(Marker, Ct));
        Assert.Equal("succeeded", Assert.Single(await _store!.GetAuditAsync(cancellationToken: Ct)).Outcome);
    }

    public async ValueTask DisposeAsync()
    {
        if (_store is not null)
            await _store.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }
}
