using System.Net;
using System.Net.Sockets;
using ControlPlane.Core.Deployers;

namespace ControlPlane.UnitTests.Deployers;

public sealed class LoopbackPortsTests
{
    [Fact]
    public void A_port_chosen_for_later_lies_below_the_kernels_ephemeral_range_and_is_free()
    {
        var ephemeralStart = int.Parse(File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split('\t', ' ')[0]);
        var port = LoopbackPorts.PickForLater();
        Assert.InRange(port, 20000, ephemeralStart - 1);
        using var listener = new TcpListener(IPAddress.Loopback, port);
        listener.Start(); // throws if it was not free
    }
}
