using System.Globalization;
using Amazon.Runtime;
using Burnrate.Pricing.Feeds.Internal;
using Microsoft.Extensions.Logging;

namespace Burnrate.Pricing.Feeds;

/// <summary>
/// One price source polled into the price book. A poll that fails (HTTP error, a body that cannot be read, a timeout)
/// changes nothing in the book, so the last good prices stay in force; the error is recorded and the feed tries again
/// after its interval, doubling per failure in a row up to 8 intervals.
/// </summary>
public sealed class PriceFeed : IDisposable
{
    private readonly IPriceSource _source;
    private readonly FeedPriceWriter _writer;
    private readonly TimeProvider _time;
    private readonly ILogger? _logger;
    private readonly Lock _lock = new();
    private readonly SemaphoreSlim _polling = new(1, 1);
    private PriceFeedStatus _status;
    private IReadOnlyList<SavingsPlanPrice> _savingsPlans = [];

    /// <summary>A feed reading <paramref name="source"/> into <paramref name="book"/> on <paramref name="time"/>'s clock.</summary>
    public PriceFeed(PriceFeedOptions options, IPriceSource source, IPriceBook book, TimeProvider time, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(book);
        ArgumentNullException.ThrowIfNull(time);
        Options = options;
        _source = source;
        _writer = new FeedPriceWriter(book, options.Name, options.InstanceTypes);
        _time = time;
        _logger = logger;
        _status = new PriceFeedStatus(options.Name, options.Kind, options.Interval, false, null, null, null, null, 0, 0, 0, 0, 0, 0, DateTimeOffset.MinValue);
    }

    /// <summary>The feed's settings.</summary>
    public PriceFeedOptions Options { get; }

    /// <summary>Where the feed stands now.</summary>
    public PriceFeedStatus Status
    {
        get
        {
            lock (_lock)
                return _status;
        }
    }

    /// <summary>The savings-plan rates the last successful poll read (Azure's preview API), kept while later polls fail.</summary>
    public IReadOnlyList<SavingsPlanPrice> SavingsPlans
    {
        get
        {
            lock (_lock)
                return _savingsPlans;
        }
    }

    /// <summary>
    /// Polls once now: reads the source and writes what changed into the book. Returns whether the poll succeeded;
    /// a failure is recorded in <see cref="Status"/>, never thrown (only <paramref name="cancellationToken"/> cancels).
    /// </summary>
    public async Task<bool> PollAsync(CancellationToken cancellationToken = default)
    {
        await _polling.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await PollLockedAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _polling.Release();
        }
    }

    private async Task<bool> PollLockedAsync(CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        var since = Status.LastSuccessAt;
        using var timeout = new CancellationTokenSource(Options.Timeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        string reason;
        try
        {
            var fetched = await _source.FetchAsync(now, since, linked.Token).ConfigureAwait(false);
            var changes = fetched.IsUnchanged ? 0 : _writer.Write(fetched, now);
            lock (_lock)
            {
                var s = _status;
                _status = s with
                {
                    Up = true,
                    LastAttemptAt = now,
                    LastSuccessAt = now,
                    ConsecutiveFailures = 0,
                    Polls = s.Polls + 1,
                    PricesHeld = fetched.IsUnchanged ? s.PricesHeld : fetched.Count,
                    SavingsPlanPrices = fetched.IsUnchanged ? s.SavingsPlanPrices : fetched.SavingsPlans.Count,
                    BookChanges = s.BookChanges + changes,
                    NextPollAt = now + Options.Interval,
                };
                if (!fetched.IsUnchanged)
                    _savingsPlans = fetched.SavingsPlans;
            }
            if (_logger is not null && changes > 0 && _logger.IsEnabled(LogLevel.Information))
                PriceFeedLog.Polled(_logger, Options.Name, fetched.Count, changes);
            return true;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            reason = "timed out after " + Configuration.Durations.Format(Options.Timeout);
        }
        catch (AmazonServiceException e)
        {
            reason = string.Create(CultureInfo.InvariantCulture, $"AWS answered {(int)e.StatusCode} {e.ErrorCode}: {e.Message}");
        }
        catch (HttpRequestException e)
        {
            reason = e.StatusCode is { } code
                ? string.Create(CultureInfo.InvariantCulture, $"HTTP {(int)code}: {e.Message}")
                : "request failed: " + e.Message;
        }
#pragma warning disable CA1031 // A feed must never stop the server: every failure is recorded and retried.
        catch (Exception e)
#pragma warning restore CA1031
        {
            reason = e is PriceFeedException ? e.Message : e.GetType().Name + ": " + e.Message;
        }

        TimeSpan retry;
        int failures;
        lock (_lock)
        {
            var s = _status;
            failures = s.ConsecutiveFailures + 1;
            retry = Options.RetryAfter(failures);
            _status = s with
            {
                Up = false,
                LastAttemptAt = now,
                LastError = reason,
                LastErrorAt = now,
                ConsecutiveFailures = failures,
                Polls = s.Polls + 1,
                Errors = s.Errors + 1,
                NextPollAt = now + retry,
            };
        }
        if (_logger is not null && _logger.IsEnabled(LogLevel.Warning))
            PriceFeedLog.PollFailed(_logger, Options.Name, failures, retry.TotalSeconds, reason);
        return false;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        (_source as IDisposable)?.Dispose();
        _polling.Dispose();
    }
}
