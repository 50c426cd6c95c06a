using Burnrate.Server;

namespace Burnrate.Tests.Server;

public sealed class WorkloadTimelineStepTests
{
    [Theory]
    [InlineData(40, 1)] // 40 points
    [InlineData(500, 1)] // exactly 500 points
    [InlineData(501, 5)] // 501 minutes would be 501 points
    [InlineData(10 * 60, 5)] // 120 points
    [InlineData(7 * 24 * 60, 60)] // a week: 168 points, not 672 of 15m
    [InlineData(90 * 24 * 60, 6 * 60)] // 90 days: 360 points
    [InlineData(3 * 365 * 24 * 60, 7 * 24 * 60)] // 3 years: 157 weeks
    public void The_default_timeline_step_is_the_finest_giving_at_most_500_points(int lifetimeMinutes, int expectedStepMinutes)
    {
        var step = WorkloadEndpoints.DefaultStep(TimeSpan.FromMinutes(lifetimeMinutes));
        Assert.Equal(TimeSpan.FromMinutes(expectedStepMinutes), step);
        Assert.True(lifetimeMinutes <= 500 * step.TotalMinutes || step == TimeSpan.FromDays(7));
    }
}
