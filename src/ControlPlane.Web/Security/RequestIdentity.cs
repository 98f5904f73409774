namespace ControlPlane.Web.Security;

/// <summary>
/// One identity per request. The default authentication scheme forwards to exactly one real scheme: a request to the API
/// or the hub that presents a bearer token is that token (the session cookie the browser may also send is never read);
/// everything else is the session cookie. Nothing merges two principals, so the identity that is authorized is the one
/// recorded in the audit trail and named in a refusal.
/// </summary>
public static class RequestIdentity
{
    public const string SchemeName = "ControlPlane.Request";

    public static string Select(HttpContext context) =>
        (context.Request.Path.StartsWithSegments("/api") || context.Request.Path.StartsWithSegments("/hubs"))
        && BearerTokenAuthenticationHandler.ReadToken(context.Request) is not null
            ? BearerTokenAuthenticationHandler.SchemeName
            : AccountSignIn.CookieScheme;
}
