using ControlPlane.Core.Deployments;
using ControlPlane.Core.Execution;
using ControlPlane.Core.Routing;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;
using JsonOptions = Microsoft.AspNetCore.Http.Json.JsonOptions;

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
            BadHttpRequestException b => BindingProblems.Describe(context, b),
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
}

/// <summary>
/// API errors are problem+json even for a client whose Accept header names only other types (the default writer then
/// declines and the answer would be an empty body). Registered after the default writer, so it only fills that gap.
/// </summary>
public sealed class ApiProblemDetailsWriter(IOptions<ProblemDetailsOptions> options, IOptions<JsonOptions> json) : IProblemDetailsWriter
{
    public bool CanWrite(ProblemDetailsContext context) => context.HttpContext.Request.Path.StartsWithSegments("/api");

    public ValueTask WriteAsync(ProblemDetailsContext context)
    {
        var problem = context.ProblemDetails;
        problem.Status ??= context.HttpContext.Response.StatusCode;
        problem.Title ??= ReasonPhrases.GetReasonPhrase(problem.Status.Value);
        options.Value.CustomizeProblemDetails?.Invoke(context);
        return new(context.HttpContext.Response.WriteAsJsonAsync(problem, json.Value.SerializerOptions.GetTypeInfo(problem.GetType()), "application/problem+json"));
    }
}

public static class ApiProblems
{
    /// <summary>Status-code-only answers on the API (no route, wrong method) say what was asked and what exists.</summary>
    public static void Customize(ProblemDetailsContext context)
    {
        var http = context.HttpContext;
        var problem = context.ProblemDetails;
        if (problem.Detail is not null || !http.Request.Path.StartsWithSegments("/api")) return;
        if (problem.Status == StatusCodes.Status415UnsupportedMediaType)
        {
            // The endpoint refused the body's media type without saying which header is wrong.
            var message = BindingProblems.UnsupportedMediaType(http);
            problem.Detail = $"{BindingProblems.ContentTypeHeader}: {message}";
            problem.Extensions["errors"] = new Dictionary<string, string[]> { [BindingProblems.ContentTypeHeader] = [message] };
            return;
        }
        var request = $"{http.Request.Method} {BindingProblems.Echo(http.Request.Path.Value ?? "")}";
        problem.Detail = problem.Status switch
        {
            StatusCodes.Status404NotFound => $"No API route matches {request}; /openapi/v1.json lists them.",
            StatusCodes.Status405MethodNotAllowed => $"{request} is not allowed; this path accepts {http.Response.Headers.Allow}.",
            _ => null,
        };
    }
}

public static class RequestLimits
{
    public const long MaxApiBodyBytes = 64 * 1024;
}
