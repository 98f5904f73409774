using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing.Template;
using Microsoft.Net.Http.Headers;

namespace ControlPlane.Web.Api;

/// <summary>
/// What the framework would otherwise answer with a 500 or a bare 404 on <c>/api</c>: a JSON body in a charset other than
/// UTF-8 (415 naming Content-Type; RFC 8259 allows only UTF-8 between systems, and an unknown charset made the JSON reader
/// throw), and a path that matches a route except for a typed segment such as <c>{id:guid}</c> (400 naming the parameter).
/// </summary>
public static class ApiRequestGuards
{
    public static IApplicationBuilder UseApiRequestGuards(this IApplicationBuilder app) => app.Use(async (context, next) =>
    {
        if (!context.Request.Path.StartsWithSegments("/api"))
        {
            await next(context);
            return;
        }
        if (UnsupportedCharset(context) is { } charsetError)
        {
            await WriteAsync(context, BindingProblems.Problem(StatusCodes.Status415UnsupportedMediaType, BindingProblems.ContentTypeHeader, charsetError));
            return;
        }
        if (context.GetEndpoint() is null && RouteValueError(context) is { } routeError)
        {
            await WriteAsync(context, BindingProblems.Problem(StatusCodes.Status400BadRequest, routeError.Field, routeError.Message));
            return;
        }
        await next(context);
    });

    private static string? UnsupportedCharset(HttpContext context)
    {
        if (context.Features.Get<IHttpRequestBodyDetectionFeature>() is { CanHaveBody: false }) return null;
        if (!MediaTypeHeaderValue.TryParse(context.Request.ContentType, out var media)) return null; // the endpoint answers 415 itself
        var charset = media.Charset.Value?.Trim('"');
        return string.IsNullOrEmpty(charset) || charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase) || charset.Equals("utf8", StringComparison.OrdinalIgnoreCase)
            ? null
            : $"charset '{BindingProblems.Echo(charset)}' is not supported; send JSON as UTF-8 ('Content-Type: application/json' or 'application/json; charset=utf-8').";
    }

    /// <summary>The parameter whose route constraint refused the value, when the path otherwise matches an API route.</summary>
    private static (string Field, string Message)? RouteValueError(HttpContext context)
    {
        var endpoints = context.RequestServices.GetRequiredService<EndpointDataSource>().Endpoints;
        var constraints = context.RequestServices.GetRequiredService<IInlineConstraintResolver>();
        foreach (var endpoint in endpoints.OfType<RouteEndpoint>())
        {
            var pattern = endpoint.RoutePattern;
            if (pattern.RawText is not { } raw || !raw.TrimStart('/').StartsWith("api", StringComparison.Ordinal)) continue;
            if (pattern.Parameters.All(p => p.ParameterPolicies.Count == 0)) continue;
            if (endpoint.Metadata.GetMetadata<IHttpMethodMetadata>() is { } methods && !methods.HttpMethods.Contains(context.Request.Method, StringComparer.OrdinalIgnoreCase))
                continue;
            var values = new RouteValueDictionary();
            var loose = TemplateParser.Parse(string.Join('/', pattern.PathSegments.Select(s =>
                string.Concat(s.Parts.Select(p => p is Microsoft.AspNetCore.Routing.Patterns.RoutePatternParameterPart parameter ? $"{{{parameter.Name}}}"
                    : p is Microsoft.AspNetCore.Routing.Patterns.RoutePatternLiteralPart literal ? literal.Content : "")))));
            if (!new TemplateMatcher(loose, new RouteValueDictionary()).TryMatch(context.Request.Path, values)) continue;
            foreach (var parameter in pattern.Parameters)
            foreach (var policy in parameter.ParameterPolicies)
            {
                if (policy.Content is not { } name || constraints.ResolveConstraint(name) is not { } constraint) continue;
                if (constraint.Match(context, null, parameter.Name, values, RouteDirection.IncomingRequest)) continue;
                var value = BindingProblems.Echo(values[parameter.Name]?.ToString() ?? "");
                return (parameter.Name, $"'{value}' is not {(name == "guid" ? "a UUID such as 3f2504e0-4f89-41d3-9a0c-0305e82c3301" : $"a valid {name}")}.");
            }
        }
        return null;
    }

    private static async Task WriteAsync(HttpContext context, HttpValidationProblemDetails problem)
    {
        context.Response.StatusCode = problem.Status!.Value;
        await context.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new() { HttpContext = context, ProblemDetails = problem });
    }
}
