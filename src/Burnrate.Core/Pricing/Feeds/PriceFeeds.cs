using Microsoft.Extensions.Logging;

namespace Burnrate.Pricing.Feeds;

/// <summary>
/// The configured price feeds and the loop that polls each when it is due, on the injected clock: every feed at start,
/// then each after its interval (or its backoff after a failure). Due feeds poll concurrently, so one slow API does not
/// hold up the others.
/// </summary>
public sealed class PriceFeeds : IDisposable
{
    private readonly TimeProvider _time;

    /// <summary>Feeds polled on <paramref name="time"/>'s clock.</summary>
    public PriceFeeds(IReadOnlyList<PriceFeed> feeds, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(feeds);
        ArgumentNullException.ThrowIfNull(time);
        Feeds = feeds;
        _time = time;
    }

    /// <summary>
    /// The feeds <paramref name="options"/> describe, writing into <paramref name="book"/>. <paramref name="http"/> carries
    /// the Azure and GCP requests (each poll sets its own timeout); AWS uses its SDK's client.
    /// </summary>
    public static PriceFeeds Create(IReadOnlyList<PriceFeedOptions> options, IPriceBook book, HttpClient http, TimeProvider time, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var feeds = new List<PriceFeed>(options.Count);
        foreach (var o in options)
        {
            IPriceSource source = o.Kind switch
            {
                PriceFeedKind.AwsSpot => new AwsSpotPriceSource(o),
                PriceFeedKind.AzureRetail => new AzureRetailPriceSource(o, http),
                PriceFeedKind.GcpBilling => new GcpBillingPriceSource(o, http),
                PriceFeedKind.SkyPilot => new SkyPilotCatalogSource(o, logger),
                _ => throw new ArgumentOutOfRangeException(nameof(options), o.Kind, "unknown feed kind"),
            };
            feeds.Add(new PriceFeed(o, source, book, time, logger));
        }
        return new PriceFeeds(feeds, time);
    }

    /// <summary>The feeds, in config order.</summary>
    public IReadOnlyList<PriceFeed> Feeds { get; }

    /// <summary>Every feed's status, in config order.</summary>
    public IReadOnlyList<PriceFeedStatus> Status => [.. Feeds.Select(static f => f.Status)];

    /// <summary>Every savings-plan rate the feeds hold.</summary>
    public IReadOnlyList<SavingsPlanPrice> SavingsPlans => [.. Feeds.SelectMany(static f => f.SavingsPlans)];

    /// <summary>Polls, concurrently, every feed due now; returns how many polled.</summary>
    public async Task<int> PollDueAsync(CancellationToken cancellationToken = default)
    {
        var now = _time.GetUtcNow();
        var due = Feeds.Where(f => f.Status.NextPollAt <= now).ToList();
        await Task.WhenAll(due.Select(f => f.PollAsync(cancellationToken))).ConfigureAwait(false);
        return due.Count;
    }

    /// <summary>Polls each feed when it is due until <paramref name="cancellationToken"/> is cancelled.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        if (Feeds.Count == 0)
            return;
        while (true)
        {
            try
            {
                await PollDueAsync(cancellationToken).ConfigureAwait(false);
                var next = Feeds.Min(static f => f.Status.NextPollAt);
                var wait = next - _time.GetUtcNow();
                if (wait > TimeSpan.Zero)
                {
                    var delay = Task.Delay(wait, _time, cancellationToken);
                    // A clock that jumped past the due time while the timer was being armed: poll now, do not wait a second interval.
                    if (_time.GetUtcNow() < next)
                        await delay.ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var feed in Feeds)
            feed.Dispose();
    }
}
