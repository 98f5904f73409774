namespace ControlPlane.Core.Deployments;

public enum DomainErrorKind
{
    /// <summary>The request itself is invalid (400).</summary>
    Invalid,
    /// <summary>The current state does not allow it (409).</summary>
    Conflict,
    /// <summary>The policy forbids this actor doing it (403).</summary>
    Forbidden,
    /// <summary>The thing named does not exist (404).</summary>
    NotFound,
}

/// <summary>A rule of the release flow refused an action; the message is written for the operator.</summary>
public sealed class DomainException(DomainErrorKind kind, string message, string? field = null) : Exception(message)
{
    public DomainErrorKind Kind { get; } = kind;

    /// <summary>The request field at fault, when there is one (camelCase JSON name).</summary>
    public string? Field { get; } = field;

    public static DomainException Conflict(string message) => new(DomainErrorKind.Conflict, message);
    public static DomainException Forbidden(string message) => new(DomainErrorKind.Forbidden, message);
    public static DomainException NotFound(string message) => new(DomainErrorKind.NotFound, message);
    public static DomainException Invalid(string field, string message) => new(DomainErrorKind.Invalid, message, field);
}
