namespace ControlPlane.Core.Data;

/// <summary>The embedded PostgreSQL could not be set up or started; the message carries the tool output.</summary>
public class EmbeddedPostgresException(string message, Exception? innerException = null)
    : Exception(message, innerException);

/// <summary>No usable <c>initdb</c>/<c>pg_ctl</c>; the message says what to install or configure.</summary>
public sealed class PostgresBinariesNotFoundException(string message) : EmbeddedPostgresException(message);
