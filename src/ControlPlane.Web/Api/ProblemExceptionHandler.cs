using ControlPlane.Core.Deployments;
using ControlPlane.Core.Execution;
using ControlPlane.Core.Routing;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc;

namespace ControlPlane.Web.Api;

/// <summary>Turns every refused or failed API request into RFC 7807 problem+json that names what is wrong.</summary>
public sealed class ProblemExceptionHandler(IProblemDetailsService problems, ILogger<ProblemExceptionHandler> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext context, Exception exception, CancellationToken cancellationToken)
    {
        var problem = exception switch
        {
            DomainException d => new ProblemDetails
            {
                Status = d.Kind switch
                {
                    DomainErrorKind.Invalid => StatusCodes.Status400BadRequest,
                    DomainErrorKind.Forbidden => StatusCodes.Status403Forbidden,
                    DomainErrorKind.NotFound => StatusCodes.Status404NotFound,
                    _ => StatusCodes.Status409Conflict,
                },
                Title = d.Kind switch
                {
                    DomainErrorKind.Invalid => "Invalid request",
                    DomainErrorKind.Forbidden => "Forbidden by policy",
                    DomainErrorKind.NotFound => "Not found",
                    _ => "Conflict with the current state",
                },
                Detail = d.Message,
                Extensions = d.Field is null ? new Dictionary<string, object?>() : new() { ["errors"] = new Dictionary<string, string[]> { [d.Field] = [d.Message] } },
            },
            ValidationException v => new HttpValidationProblemDetails(
                v.Errors.GroupBy(e => e.Field).ToDictionary(g => g.Key, g => g.Select(e => e.Message).ToArray()))
            {
                Status = StatusCodes.Status400BadRequest,
                Title = "Invalid request",
                Detail = v.Message,
            },
            BadHttpRequestException b => new ProblemDetails
            {
                Status = b.StatusCode,
                Title = b.StatusCode == StatusCodes.Status413PayloadTooLarge ? "Request body too large" : "Malformed request",
                Detail = Describe(b),
            },
            RouterException r => new ProblemDetails { Status = StatusCodes.Status502BadGateway, Title = "Router error", Detail = r.Message },
            _ => null,
        };
        if (problem is null)
        {
            logger.LogError(exception, "Unhandled error on {Method} {Path}", context.Request.Method, context.Request.Path);
            problem = new ProblemDetails
            {
                Status = StatusCodes.Status500InternalServerError,
                Title = "Internal error",
                Detail = "ControlPlane failed to handle the request; nothing was changed unless the audit trail says so. The server log has the details.",
            };
        }
        context.Response.StatusCode = problem.Status!.Value;
        return await problems.TryWriteAsync(new() { HttpContext = context, ProblemDetails = problem, Exception = exception });
    }

    private static string Describe(BadHttpRequestException b)
    {
        if (b.StatusCode == StatusCodes.Status413PayloadTooLarge)
            return $"The request body is larger than the {RequestLimits.MaxApiBodyBytes / 1024} KiB this API accepts.";
        // The JSON reader's message names the offending member ("... could not be mapped to ... Path: $.foo").
        return b.InnerException is System.Text.Json.JsonException j ? $"The JSON body is invalid: {j.Message}" : b.Message;
    }
}

public static class RequestLimits
{
    public const long MaxApiBodyBytes = 64 * 1024;
}
