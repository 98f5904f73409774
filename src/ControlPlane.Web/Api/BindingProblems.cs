using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.Extensions.Options;
using HttpJsonOptions = Microsoft.AspNetCore.Http.Json.JsonOptions;

namespace ControlPlane.Web.Api;

/// <summary>
/// Turns the framework's binding failures (body JSON, query and route values, content type) into validation problems whose
/// <c>errors</c> name the field — a JSON path without <c>$.</c> like the validators use (<c>policy.requiredApprovals</c>), a
/// query or route parameter, or a header — and say what was expected. The same answer in every environment: the framework
/// only throws these with <see cref="RouteHandlerOptions.ThrowOnBadRequest"/>, which Program.cs switches on everywhere.
/// </summary>
public static partial class BindingProblems
{
    public const string BodyField = "body";
    public const string ContentTypeHeader = "Content-Type";
    private const int MaxEchoedLength = 64;

    public static HttpValidationProblemDetails Describe(HttpContext context, BadHttpRequestException b)
    {
        var (field, message) = b switch
        {
            { StatusCode: StatusCodes.Status413PayloadTooLarge } =>
                (BodyField, $"The request body is larger than the {RequestLimits.MaxApiBodyBytes / 1024} KiB this API accepts."),
            { StatusCode: StatusCodes.Status415UnsupportedMediaType } => (ContentTypeHeader, UnsupportedMediaType(context)),
            { InnerException: JsonException j } => FromJson(context, j),
            _ => FromMessage(b.Message),
        };
        return Problem(b.StatusCode, field, message);
    }

    public static HttpValidationProblemDetails Problem(int status, string field, string message) =>
        new(new Dictionary<string, string[]> { [field] = [message] })
        {
            Status = status,
            Title = status switch
            {
                StatusCodes.Status413PayloadTooLarge => "Request body too large",
                StatusCodes.Status415UnsupportedMediaType => "Unsupported media type",
                _ => "Invalid request",
            },
            Detail = $"{field}: {message}",
        };

    internal static string UnsupportedMediaType(HttpContext context) =>
        string.IsNullOrEmpty(context.Request.ContentType)
            ? "is missing; send the JSON body with 'Content-Type: application/json'."
            : $"'{Echo(context.Request.ContentType)}' is not supported; send the JSON body with 'Content-Type: application/json'.";

    /// <summary>Messages of RequestDelegateFactory for route, query, header and form values (their wording is stable since .NET 7).</summary>
    private static (string Field, string Message) FromMessage(string message)
    {
        if (BindFailed().Match(message) is { Success: true } bind)
            return (bind.Groups["name"].Value, $"'{Echo(bind.Groups["value"].Value)}' is not {Expected(bind.Groups["type"].Value)}.");
        if (Required().Match(message) is { Success: true } required)
            return (required.Groups["name"].Value, $"is required (from the {required.Groups["source"].Value}).");
        if (NoBody().IsMatch(message))
            return (BodyField, "A JSON body is required.");
        return (BodyField, message);
    }

    private static (string Field, string Message) FromJson(HttpContext context, JsonException j)
    {
        var path = j.Path ?? "$";
        var where = j.LineNumber is { } line ? $" (line {line + 1}, byte {j.BytePositionInLine + 1})" : "";
        var reason = j.Message.Split(" Path: ", 2)[0].Split(" LineNumber: ", 2)[0].TrimEnd(' ', '|');

        if (DuplicateProperty().Match(reason) is { Success: true } duplicate)
        {
            // Inside a free-form object (settings) the path stops at the object; name the repeated key itself.
            var name = duplicate.Groups["name"].Value;
            if (!path.EndsWith("." + name, StringComparison.OrdinalIgnoreCase) && !path.EndsWith($"['{name}']", StringComparison.Ordinal))
                path = path + "." + name;
            return (Field(path), $"appears more than once; each field may be given only once{where}.");
        }
        var options = context.RequestServices.GetService<IOptions<HttpJsonOptions>>()?.Value.SerializerOptions;
        // The exception handler runs with the endpoint cleared; the feature keeps the one that failed.
        var endpoint = context.Features.Get<Microsoft.AspNetCore.Diagnostics.IExceptionHandlerFeature>()?.Endpoint ?? context.GetEndpoint();
        var bodyType = endpoint?.Metadata.GetMetadata<IAcceptsMetadata>()?.RequestType;
        if (UnknownProperty().IsMatch(reason))
        {
            var known = options is null || bodyType is null ? null : TypeAt(options, bodyType, Segments(path).SkipLast(1)) is { Kind: JsonTypeInfoKind.Object } owner
                ? string.Join(", ", owner.Properties.Select(p => p.Name)) : null;
            return (Field(path), known is null ? $"is not a known field{where}." : $"is not a known field{where}; known fields here: {known}.");
        }
        if (j.InnerException is null || j.InnerException.GetType().Name != "JsonReaderException")
        {
            // The value is well-formed JSON but not what the field takes ("could not be converted to …").
            var target = options is null || bodyType is null ? null : TypeAt(options, bodyType, Segments(path));
            return (Field(path), target is null ? $"has a value of the wrong type{where}." : $"must be {Expected(target.Type)}{where}.");
        }
        return (Field(path), $"The body is not valid JSON{where}: {reason}");
    }

    /// <summary><c>$.checks[0].path</c> → <c>checks[0].path</c>; the document itself → <c>body</c>, inside a top-level array <c>body[0]</c>.</summary>
    private static string Field(string path) =>
        path is "$" or "" ? BodyField
        : path.StartsWith("$.", StringComparison.Ordinal) ? path[2..]
        : path.StartsWith("$[", StringComparison.Ordinal) ? BodyField + path[1..] // inside a top-level array: body[0].name
        : path.TrimStart('$');

    private static IEnumerable<string?> Segments(string path)
    {
        // Property names, or null for an array index / dictionary key step.
        foreach (Match m in PathSegment().Matches(path))
            yield return m.Groups["name"].Success ? m.Groups["name"].Value : m.Groups["quoted"].Success ? m.Groups["quoted"].Value : null;
    }

    private static JsonTypeInfo? TypeAt(JsonSerializerOptions options, Type root, IEnumerable<string?> segments)
    {
        JsonTypeInfo? info;
        try { info = options.GetTypeInfo(Nullable.GetUnderlyingType(root) ?? root); }
        catch (Exception e) when (e is NotSupportedException or InvalidOperationException) { return null; }
        foreach (var segment in segments)
        {
            Type? next = info.Kind switch
            {
                JsonTypeInfoKind.Object when segment is not null => info.Properties
                    .FirstOrDefault(p => string.Equals(p.Name, segment, options.PropertyNameCaseInsensitive ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal))?.PropertyType,
                JsonTypeInfoKind.Enumerable or JsonTypeInfoKind.Dictionary => info.ElementType,
                _ => null,
            };
            if (next is null) return null;
            info = options.GetTypeInfo(Nullable.GetUnderlyingType(next) ?? next);
        }
        return info;
    }

    private static string Expected(Type type)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (type.IsEnum) return "one of: " + string.Join(", ", Enum.GetNames(type));
        return type switch
        {
            _ when type == typeof(string) => "a string",
            _ when type == typeof(int) => $"a whole number from {int.MinValue} to {int.MaxValue}",
            _ when type == typeof(long) => $"a whole number from {long.MinValue} to {long.MaxValue}",
            _ when type == typeof(double) || type == typeof(decimal) || type == typeof(float) => "a number",
            _ when type == typeof(bool) => "true or false",
            _ when type == typeof(DateTimeOffset) || type == typeof(DateTime) => "an ISO 8601 date and time such as 2030-01-31T12:00:00Z",
            _ when type == typeof(Guid) => "a UUID such as 3f2504e0-4f89-41d3-9a0c-0305e82c3301",
            _ when type == typeof(JsonElement) => "a JSON value",
            _ when type != typeof(string) && typeof(System.Collections.IEnumerable).IsAssignableFrom(type) && !type.Name.Contains("Dictionary", StringComparison.Ordinal) => "an array",
            _ => "an object",
        };
    }

    /// <summary>The C# spelling of a parameter type in the framework's message (<c>int?</c>, <c>Guid</c>, <c>DateTimeOffset?</c>).</summary>
    private static string Expected(string csharpType) => NullableName().Replace(csharpType, "$1").TrimEnd('?') switch
    {
        "int" or "Int32" => Expected(typeof(int)),
        "long" or "Int64" => Expected(typeof(long)),
        "bool" or "Boolean" => Expected(typeof(bool)),
        "double" or "decimal" or "float" => "a number",
        "Guid" => Expected(typeof(Guid)),
        "DateTimeOffset" or "DateTime" => Expected(typeof(DateTimeOffset)),
        var other => $"a valid {other}",
    };

    internal static string Echo(string value) =>
        new string([.. (value.Length > MaxEchoedLength ? value[..MaxEchoedLength] + "…" : value).Select(c => char.IsControl(c) ? '?' : c)]);

    [GeneratedRegex("""^Failed to bind parameter "(?<type>[^"]+) (?<name>[^" ]+)" from "(?<value>.*)"\.$""", RegexOptions.Singleline)]
    private static partial Regex BindFailed();

    [GeneratedRegex("""^Nullable<(.+)>$""")]
    private static partial Regex NullableName();

    [GeneratedRegex("""^Required parameter "(?<type>[^"]+) (?<name>[^" ]+)" was not provided from (?<source>[^.]+)\.""")]
    private static partial Regex Required();

    [GeneratedRegex("""^Implicit body inferred for parameter""")]
    private static partial Regex NoBody();

    [GeneratedRegex("""^Duplicate property '(?<name>.*)' encountered""", RegexOptions.Singleline)]
    private static partial Regex DuplicateProperty();

    [GeneratedRegex("""could not be mapped to any \.NET member""")]
    private static partial Regex UnknownProperty();

    [GeneratedRegex("""\.(?<name>[^.\[]+)|\['(?<quoted>(?:[^']|'')*)'\]|\[\d+\]""")]
    private static partial Regex PathSegment();
}
