using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;
using BindingSource = Microsoft.AspNetCore.Mvc.ModelBinding.BindingSource;

namespace ControlPlane.Web.Api;

/// <summary>
/// What <c>/openapi/v1.json</c> says beyond the endpoints' own metadata: the bearer scheme and which operations need it,
/// the problem+json answers every route can give, and which request fields are really required (request records are all
/// nullable so that a missing field gets our message naming it; the generator would otherwise mark every one required).
/// </summary>
public static class OpenApiContract
{
    public const string BearerScheme = "Bearer";
    public const string ProblemSchema = "ProblemDetails";
    public const string ValidationProblemSchema = "ValidationProblemDetails";

    /// <summary>Required fields per request body; a request type not listed has none (the server still validates each).</summary>
    private static readonly Dictionary<Type, string[]> RequiredFields = new()
    {
        [typeof(RegisterApplicationRequest)] = ["name", "router", "deployer", "initialVersion"],
        [typeof(KindAndSettings)] = ["kind"],
        [typeof(StartReleaseRequest)] = ["version"],
        [typeof(ReasonRequest)] = ["reason"],
        [typeof(FreezeOverrideRequest)] = ["reason"],
        [typeof(CreateFreezeWindowRequest)] = ["name", "kind", "timeZone"],
        [typeof(CreateTokenRequest)] = ["name", "role"],
        [typeof(CreateUserRequest)] = ["userName", "role", "password"],
        [typeof(ChangeRoleRequest)] = ["role"],
    };

    public static void Configure(OpenApiOptions options)
    {
        options.AddDocumentTransformer((document, _, _) =>
        {
            EnsureComponents(document);
            return Task.CompletedTask;
        });
        options.AddOperationTransformer((operation, context, _) =>
        {
            Describe(operation, context);
            return Task.CompletedTask;
        });
        options.AddSchemaTransformer((schema, context, _) =>
        {
            var type = context.JsonTypeInfo.Type;
            if (RequiredFields.ContainsKey(type) || type.Name.EndsWith("Request", StringComparison.Ordinal))
                schema.Required = new HashSet<string>(RequiredFields.GetValueOrDefault(type) ?? []);
            return Task.CompletedTask;
        });
    }

    private static void Describe(OpenApiOperation operation, OpenApiOperationTransformerContext context)
    {
        var document = context.Document ?? throw new InvalidOperationException("The OpenAPI operation has no document.");
        EnsureComponents(document);
        var description = context.Description;
        var metadata = description.ActionDescriptor.EndpointMetadata;
        var anonymous = metadata.OfType<IAllowAnonymous>().Any();
        var authorized = !anonymous && metadata.OfType<IAuthorizeData>().Any();
        var hasBody = description.ParameterDescriptions.Any(p => p.Source == BindingSource.Body);
        // A plain string route value cannot fail to bind; a typed one ({id:guid}) and any query or body input can.
        var hasInput = hasBody || description.ParameterDescriptions.Any(p =>
            p.Source == BindingSource.Query
            || (p.Source == BindingSource.Path && p.Type != typeof(string)));
        var hasRouteValue = description.ParameterDescriptions.Any(p => p.Source == BindingSource.Path);
        var changes = !HttpMethods.IsGet(description.HttpMethod ?? "GET");

        if (authorized)
        {
            operation.Security ??= [];
            operation.Security.Add(new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(BearerScheme, document)] = [] });
        }
        operation.Responses ??= new OpenApiResponses();
        if (hasInput) Add(operation, document, StatusCodes.Status400BadRequest, ValidationProblemSchema,
            "Invalid input: `errors` names each field (a JSON path such as `policy.requiredApprovals`, a query or route parameter, or a header) with the reason.");
        if (authorized)
        {
            Add(operation, document, StatusCodes.Status401Unauthorized, ProblemSchema, "No valid bearer token (`Authorization: Bearer <token>`).");
            Add(operation, document, StatusCodes.Status403Forbidden, ProblemSchema, "The token's role may not do this, or a policy forbids it (the detail says which).");
        }
        if (hasRouteValue) Add(operation, document, StatusCodes.Status404NotFound, ProblemSchema, "The named resource does not exist.");
        if (changes) Add(operation, document, StatusCodes.Status409Conflict, ProblemSchema, "The current state does not allow this (the detail says why).");
        if (hasBody)
        {
            Add(operation, document, StatusCodes.Status413PayloadTooLarge, ProblemSchema, $"The body is larger than {RequestLimits.MaxApiBodyBytes / 1024} KiB.");
            Add(operation, document, StatusCodes.Status415UnsupportedMediaType, ValidationProblemSchema,
                "The body is not `application/json` in UTF-8; `errors` names the `Content-Type` header.");
        }
        if (metadata.OfType<Microsoft.AspNetCore.RateLimiting.EnableRateLimitingAttribute>().Any())
            Add(operation, document, StatusCodes.Status429TooManyRequests, ProblemSchema, "Too many requests from this address; see `Retry-After`.");
    }

    private static void Add(OpenApiOperation operation, OpenApiDocument document, int status, string schema, string description)
    {
        var key = status.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (operation.Responses!.ContainsKey(key)) return;
        operation.Responses[key] = new OpenApiResponse
        {
            Description = description,
            Content = new Dictionary<string, OpenApiMediaType>
            {
                ["application/problem+json"] = new() { Schema = new OpenApiSchemaReference(schema, document) },
            },
        };
    }

    private static void EnsureComponents(OpenApiDocument document)
    {
        document.Components ??= new OpenApiComponents();
        document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
        document.Components.SecuritySchemes.TryAdd(BearerScheme, new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.Http,
            Scheme = "bearer",
            Description = "An API token (POST /api/v1/tokens, or the configured ControlPlane:Bootstrap:AdminToken) as 'Authorization: Bearer <token>'.",
        });
        document.Components.Schemas ??= new Dictionary<string, IOpenApiSchema>();
        document.Components.Schemas.TryAdd(ProblemSchema, Problem(validation: false));
        document.Components.Schemas.TryAdd(ValidationProblemSchema, Problem(validation: true));
    }

    private static OpenApiSchema Problem(bool validation)
    {
        var schema = new OpenApiSchema
        {
            Type = JsonSchemaType.Object,
            Description = validation ? "RFC 7807 problem details with the fields at fault." : "RFC 7807 problem details.",
            Properties = new Dictionary<string, IOpenApiSchema>
            {
                ["type"] = new OpenApiSchema { Type = JsonSchemaType.String },
                ["title"] = new OpenApiSchema { Type = JsonSchemaType.String },
                ["status"] = new OpenApiSchema { Type = JsonSchemaType.Integer, Format = "int32" },
                ["detail"] = new OpenApiSchema { Type = JsonSchemaType.String },
                ["instance"] = new OpenApiSchema { Type = JsonSchemaType.String },
                ["traceId"] = new OpenApiSchema { Type = JsonSchemaType.String },
            },
        };
        if (validation)
        {
            schema.Properties["errors"] = new OpenApiSchema
            {
                Type = JsonSchemaType.Object,
                Description = "Field, parameter or header name → what is wrong with it.",
                AdditionalProperties = new OpenApiSchema { Type = JsonSchemaType.Array, Items = new OpenApiSchema { Type = JsonSchemaType.String } },
                Example = new JsonObject { ["policy.requiredApprovals"] = new JsonArray("must be a whole number from -2147483648 to 2147483647 (line 1, byte 48).") },
            };
            schema.Required = new HashSet<string> { "errors" };
        }
        return schema;
    }
}
