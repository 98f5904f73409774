using System.Text.Json.Serialization;

namespace ControlPlane.Core.Deployments;

/// <summary>One of the two identical environments of an application.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<Slot>))]
public enum Slot
{
    [JsonStringEnumMemberName("blue")] Blue,
    [JsonStringEnumMemberName("green")] Green,
}

public static class SlotExtensions
{
    public static Slot Other(this Slot slot) => slot == Slot.Blue ? Slot.Green : Slot.Blue;

    /// <summary>The lower-case name used in URLs, JSON, audit records and process names.</summary>
    public static string Name(this Slot slot) => slot == Slot.Blue ? "blue" : "green";

    public static bool TryParse(string? value, out Slot slot)
    {
        switch (value?.Trim().ToLowerInvariant())
        {
            case "blue": slot = Slot.Blue; return true;
            case "green": slot = Slot.Green; return true;
            default: slot = default; return false;
        }
    }
}
