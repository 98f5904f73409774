using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;

/// <summary>
/// What the router measures of the real traffic it forwards, per slot: requests, 5xx answers and a latency histogram.
/// A slot's counters start afresh when it becomes live, so the live slot's numbers are "since the switch" and the previous
/// slot's stay what it served before it. Counters only grow otherwise (read as a whole by ControlPlane over the control
/// channel, <c>GET /traffic</c>); lost when the router restarts, which only means less evidence.
/// </summary>
internal sealed class TrafficMeter(bool enabled, TimeProvider time)
{
    /// <summary>Upper bounds of the latency buckets in milliseconds; one more bucket counts everything slower.</summary>
    public static readonly double[] BoundsMs = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

    private SlotCounters _blue = new(time.GetUtcNow());
    private SlotCounters _green = new(time.GetUtcNow());

    public bool Enabled => enabled;

    public long Start() => enabled ? Stopwatch.GetTimestamp() : 0;

    public void Record(string slot, int status, long started)
    {
        if (!enabled) return;
        var counters = slot == "blue" ? Volatile.Read(ref _blue) : Volatile.Read(ref _green);
        var elapsed = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        var bucket = 0;
        while (bucket < BoundsMs.Length && elapsed > BoundsMs[bucket]) bucket++;
        Interlocked.Increment(ref counters.Requests);
        if (status >= 500) Interlocked.Increment(ref counters.Errors);
        Interlocked.Increment(ref counters.Buckets[bucket]);
    }

    /// <summary>The slot became live: what it serves from now on is measured on its own.</summary>
    public void Restart(string slot)
    {
        var fresh = new SlotCounters(time.GetUtcNow());
        if (slot == "blue") Volatile.Write(ref _blue, fresh);
        else Volatile.Write(ref _green, fresh);
    }

    public TrafficReport Report() => new(enabled, BoundsMs, Volatile.Read(ref _blue).Snapshot(), Volatile.Read(ref _green).Snapshot());

    private sealed class SlotCounters(DateTimeOffset since)
    {
        public long Requests;
        public long Errors;
        public readonly long[] Buckets = new long[BoundsMs.Length + 1];

        public SlotTraffic Snapshot() => new(since, Interlocked.Read(ref Requests), Interlocked.Read(ref Errors), (long[])Buckets.Clone());
    }
}

internal sealed record SlotTraffic(DateTimeOffset Since, long Requests, long Errors, long[] Buckets);

internal sealed record TrafficReport(bool Measuring, double[] BoundsMs, SlotTraffic Blue, SlotTraffic Green);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(TrafficReport))]
internal sealed partial class TrafficJson : JsonSerializerContext;
