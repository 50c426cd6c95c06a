using Burnrate.Alerting.Delivery;
using Burnrate.Configuration;

namespace Burnrate.Tests.Alerting;

public sealed class DeliveryConfigTests
{
    [Fact]
    public void Notify_targets_delivery_and_actions_become_typed_options()
    {
        var config = BurnrateConfig.Parse("""
            notify:
              - alertmanager: http://127.0.0.1:9093
              - webhook: http://127.0.0.1:9999/hook
                send_resolved: false
              - slack: https://hooks.slack.com/services/T0/B0/secret
                name: finops-slack
            delivery:
              attempts: 3
              initial_backoff: 2s
              max_backoff: 30s
            actions:
              allow: [scancel, sky]
              dry_run: false
            """);

        var delivery = config.ToDeliveryOptions();
        Assert.Equal(
            [new NotifyTarget("alertmanager-0", NotifyKind.Alertmanager, new Uri("http://127.0.0.1:9093"), true),
             new NotifyTarget("webhook-1", NotifyKind.Webhook, new Uri("http://127.0.0.1:9999/hook"), false),
             new NotifyTarget("finops-slack", NotifyKind.Slack, new Uri("https://hooks.slack.com/services/T0/B0/secret"), true)],
            delivery.Targets);
        Assert.Equal(3, delivery.Attempts);
        Assert.Equal(TimeSpan.FromSeconds(2), delivery.InitialBackoff);
        Assert.Equal(TimeSpan.FromSeconds(30), delivery.MaxBackoff);
        var actions = config.ToActionOptions();
        Assert.Equal(["scancel", "sky"], actions.Allow);
        Assert.False(actions.DryRun);
    }

    [Fact]
    public void Actions_are_dry_run_unless_the_file_says_otherwise()
    {
        Assert.True(BurnrateConfig.Parse("actions:\n  allow: [scancel]\n").ToActionOptions().DryRun);
        Assert.True(new BurnrateConfig().ToActionOptions().DryRun);
    }

    [Theory]
    [InlineData("notify:\n  - webhook: http://a/\n    slack: http://b/\n", "notify[0] must name exactly one of alertmanager, webhook or slack")]
    [InlineData("notify:\n  - name: x\n", "notify[0] must name exactly one")]
    [InlineData("notify:\n  - slack: ftp://hooks/T0/secret\n", "notify[0].slack is not an http(s) URL")]
    [InlineData("delivery:\n  attempts: 0\n", "delivery.attempts must be at least 1")]
    [InlineData("delivery:\n  max_backoff: soon\n", "delivery.max_backoff")]
    [InlineData("actions:\n  allow: [\"rm -rf\"]\n", "actions.allow[0]")]
    [InlineData("actions:\n  timeout: 0s\n", "actions.timeout must be positive")]
    public void A_bad_delivery_or_action_setting_is_an_error_naming_the_key(string yaml, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => BurnrateConfig.Parse(yaml));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_bad_slack_url_is_refused_without_repeating_its_token()
    {
        var e = Assert.Throws<ConfigException>(() => BurnrateConfig.Parse("notify:\n  - slack: hooks.slack.com/services/T0/B0/supersecret\n"));
        Assert.DoesNotContain("supersecret", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unknown_key_in_a_notify_target_is_an_error()
    {
        var e = Assert.Throws<ConfigException>(() => BurnrateConfig.Parse("notify:\n  - webhok: http://a/\n"));
        Assert.Contains("webhok", e.Message, StringComparison.Ordinal);
    }
}
