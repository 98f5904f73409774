using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace ControlPlane.Core.Deployers;

/// <summary>
/// Chooses a loopback port now that something will listen on later (a slot, a router). A port-0 bind would come from the
/// kernel's ephemeral range, where any later port-0 listener or outgoing connection may take the same number in the
/// meantime; ports below that range are never handed out by the kernel, so only another explicit choice can collide.
/// This process never hands out the same port twice: an application's router and slot ports are chosen one after the other,
/// before anything listens on any of them, so a free-check alone can return one number twice (seen in CI: a router and its
/// green slot on one port, the slot's start then refused).
/// </summary>
public static class LoopbackPorts
{
    private const int Lowest = 20000;
    private static readonly ConcurrentDictionary<int, byte> HandedOut = new();

    public static int PickForLater()
    {
        var ephemeralStart = EphemeralRangeStart();
        if (ephemeralStart - Lowest >= 1000)
        {
            // Half the range handed out (a very long-lived test run): start over rather than search an ever fuller range.
            if (HandedOut.Count > (ephemeralStart - Lowest) / 2) HandedOut.Clear();
            for (var attempt = 0; attempt < 50; attempt++)
            {
                var port = Random.Shared.Next(Lowest, ephemeralStart);
                if (!HandedOut.ContainsKey(port) && IsFree(port) && HandedOut.TryAdd(port, 0)) return port;
            }
        }
        // No room below the ephemeral range on this machine: fall back to the kernel's choice.
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static int EphemeralRangeStart()
    {
        try
        {
            var range = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[])['\t', ' '], StringSplitOptions.RemoveEmptyEntries);
            return int.Parse(range[0], System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return 32768; // the common Linux default; other systems start at 49152
        }
    }
}
