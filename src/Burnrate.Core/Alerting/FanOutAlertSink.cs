namespace Burnrate.Alerting;

/// <summary>Hands every notification to several sinks in turn (the log and delivery, in <c>burnrate serve</c>).</summary>
public sealed class FanOutAlertSink(params IAlertSink[] sinks) : IAlertSink
{
    /// <inheritdoc />
    public void Publish(IReadOnlyList<AlertNotification> notifications)
    {
        foreach (var sink in sinks)
            sink.Publish(notifications);
    }
}
