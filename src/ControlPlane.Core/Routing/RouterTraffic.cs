namespace ControlPlane.Core.Routing;

/// <summary>One slot's real traffic through the router since <see cref="Since"/> (when it last became live, or the router started).</summary>
public sealed record SlotTraffic(DateTimeOffset Since, long Requests, long Errors, long[] Buckets)
{
    public double ErrorRate => Requests == 0 ? 0 : (double)Errors / Requests;
}

/// <summary>What a measuring router reports (the embedded router's <c>GET /traffic</c>): per slot, cumulative since each slot went live.</summary>
public sealed record RouterTraffic(bool Measuring, double[] BoundsMs, SlotTraffic Blue, SlotTraffic Green)
{
    public SlotTraffic Of(Deployments.Slot slot) => slot == Deployments.Slot.Blue ? Blue : Green;

    /// <summary>
    /// The latency under which <paramref name="quantile"/> of the requests finished, as the upper bound of its histogram bucket
    /// (an upper estimate); +∞ when it lies in the open last bucket, null without requests.
    /// </summary>
    public double? Quantile(SlotTraffic slot, double quantile)
    {
        if (slot.Requests == 0) return null;
        var rank = Math.Ceiling(quantile * slot.Buckets.Sum());
        long seen = 0;
        for (var i = 0; i < slot.Buckets.Length; i++)
        {
            seen += slot.Buckets[i];
            if (seen >= rank) return i < BoundsMs.Length ? BoundsMs[i] : double.PositiveInfinity;
        }
        return double.PositiveInfinity;
    }
}
