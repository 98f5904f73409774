using ControlPlane.Core.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.Core.Audit;

/// <summary>
/// The chain-verification result shown on dashboards. A full verification of millions of events takes seconds, so
/// every viewer shares one run, and its result is reused for a minute. (<c>GET /api/v1/audit/verify</c> always runs a
/// fresh, full verification.)
/// </summary>
public sealed class AuditChainStatus(IServiceScopeFactory scopes, TimeProvider time)
{
    public static readonly TimeSpan MaxAge = TimeSpan.FromMinutes(1);
    private readonly SemaphoreSlim _gate = new(1, 1);
    private (AuditVerification Result, DateTimeOffset At)? _last;

    public async Task<(AuditVerification Result, DateTimeOffset VerifiedAt)> GetAsync(CancellationToken cancellationToken)
    {
        if (_last is { } fresh && time.GetUtcNow() - fresh.At < MaxAge) return fresh;
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (_last is { } raced && time.GetUtcNow() - raced.At < MaxAge) return raced;
            await using var scope = scopes.CreateAsyncScope();
            var result = await scope.ServiceProvider.GetRequiredService<AuditVerifier>().VerifyAsync(cancellationToken);
            _last = (result, time.GetUtcNow());
            return _last.Value;
        }
        finally
        {
            _gate.Release();
        }
    }
}
