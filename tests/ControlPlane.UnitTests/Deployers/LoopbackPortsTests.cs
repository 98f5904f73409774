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

    [Fact]
    public void Ports_chosen_one_after_the_other_are_never_the_same_even_before_anything_listens()
    {
        // 2,000 random picks from the ~12,000 ports below the ephemeral range repeat a number many times over (birthday
        // bound) unless the picker remembers what it handed out; nothing listens on any of them, as between registering an
        // application (router, blue and green ports) and starting its processes.
        var ports = Enumerable.Range(0, 2000).Select(_ => LoopbackPorts.PickForLater()).ToList();
        Assert.Equal(ports.Count, ports.Distinct().Count());
    }
}
