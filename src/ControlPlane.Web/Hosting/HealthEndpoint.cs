using ControlPlane.Core.Execution;

namespace ControlPlane.Web.Hosting;

/// <summary>
/// <c>/healthz</c>: 503 with the reason when something keeps ControlPlane or an application from serving (the database is
/// unreachable, an application's router cannot listen or its live slot cannot start), 200 otherwise. Bounded: an
/// unreachable database answers within 2 s, never a hanging request.
/// </summary>
public static class HealthEndpoint
{
    public static async Task<IResult> CheckAsync(DatabaseSupervisor database, RuntimeFaults faults, CancellationToken ct)
    {
        var problems = new List<string>();
        if (await database.CheckAsync(TimeSpan.FromSeconds(1.5), ct) is { } problem) problems.Add($"PostgreSQL is not reachable: {problem}");
        problems.AddRange(faults.All.Select(f => $"{f.Application}: {f.Reason} (since {f.Since:yyyy-MM-dd HH:mm:ss} UTC)"));
        return problems.Count == 0
            ? Results.Ok(new { status = "ok" })
            : Results.Problem(string.Join("; ", problems), statusCode: StatusCodes.Status503ServiceUnavailable,
                extensions: new Dictionary<string, object?> { ["problems"] = problems });
    }
}
