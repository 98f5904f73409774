using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Http;

namespace ControlPlane.Web.Hosting;

/// <summary>
/// Before anything starts (slot processes, routers), makes sure the dashboard's addresses are free, so a taken port ends the
/// start with one line naming <c>--urls</c> and nothing left running.
/// </summary>
public static class ListenAddressCheck
{
    /// <summary>The first configured address that is taken, with why; null when all are free (or cannot be checked here).</summary>
    public static string? FirstTaken(string? urls)
    {
        foreach (var url in (urls ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            BindingAddress address;
            try { address = BindingAddress.Parse(url); }
            catch (FormatException) { continue; } // Kestrel reports a malformed address itself
            if (address.IsUnixPipe || address.Port == 0) continue;
            var ip = address.Host is "localhost" ? IPAddress.Loopback
                : address.Host is "*" or "+" ? IPAddress.Any
                : IPAddress.TryParse(address.Host, out var parsed) ? parsed : null;
            if (ip is null) continue;
            try
            {
                using var probe = new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                probe.Bind(new IPEndPoint(ip, address.Port));
            }
            catch (SocketException ex) when (ex.SocketErrorCode is SocketError.AddressAlreadyInUse or SocketError.AccessDenied)
            {
                return $"{url} ({ex.Message})";
            }
        }
        return null;
    }
}
