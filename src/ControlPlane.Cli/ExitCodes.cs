namespace ControlPlane.Cli;

/// <summary>Distinct per outcome so a pipeline can branch on them (docs/cli.md lists them).</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    /// <summary>Wrong command line, or a missing URL/token.</summary>
    public const int Usage = 1;
    /// <summary>The server refused the request (4xx/5xx), or could not be reached.</summary>
    public const int ApiError = 2;
    public const int ReleaseFailed = 3;
    public const int ReleaseRolledBack = 4;
    public const int ReleaseAborted = 5;
    /// <summary>--timeout passed before the release ended (the message says in which state, e.g. AwaitingApproval).</summary>
    public const int TimedOut = 6;
    /// <summary>audit verify or evidence verify found the record damaged or not signed by the expected key.</summary>
    public const int VerificationFailed = 7;
}
