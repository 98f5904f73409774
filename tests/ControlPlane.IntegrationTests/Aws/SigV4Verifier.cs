using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace ControlPlane.IntegrationTests.Aws;

/// <summary>
/// Checks an AWS Signature Version 4 <c>Authorization</c> header the way AWS does: parse it, rebuild the canonical request
/// from what actually arrived, derive the signing key from the known secret and compare. Written from the AWS
/// specification independently of the client's signer, so that a broken signer fails the tests.
/// </summary>
public sealed partial class SigV4Verifier(string accessKeyId, string secretAccessKey, string region, string service, string? sessionToken = null)
{
    [GeneratedRegex(@"^AWS4-HMAC-SHA256 Credential=(?<akid>[^/,\s]+)/(?<date>\d{8})/(?<region>[^/]+)/(?<service>[^/]+)/aws4_request,\s*SignedHeaders=(?<signed>[a-z0-9;-]+),\s*Signature=(?<signature>[0-9a-f]{64})$")]
    private static partial Regex AuthorizationPattern();

    /// <summary>Null when the signature is valid; otherwise the AWS error code and message to answer with.</summary>
    /// <param name="headers">Every header as received, names in any case.</param>
    /// <param name="rawQuery">The query string without '?', as received.</param>
    public (string Code, string Message)? Check(string method, string path, string rawQuery, IReadOnlyDictionary<string, string> headers, byte[] body, DateTimeOffset now)
    {
        var lower = headers.ToDictionary(h => h.Key.ToLowerInvariant(), h => h.Value);
        if (!lower.TryGetValue("authorization", out var authorization))
            return ("MissingAuthenticationToken", "Request is missing Authentication Token");
        var match = AuthorizationPattern().Match(authorization);
        if (!match.Success)
            return ("IncompleteSignature", $"Authorization header is malformed: {authorization}");
        if (match.Groups["akid"].Value != accessKeyId)
            return ("InvalidClientTokenId", "The security token included in the request is invalid.");
        if (match.Groups["region"].Value != region || match.Groups["service"].Value != service)
            return ("SignatureDoesNotMatch", $"Credential should be scoped to region '{region}' and service '{service}', not '{match.Groups["region"].Value}'/'{match.Groups["service"].Value}'.");

        var signedHeaders = match.Groups["signed"].Value.Split(';');
        if (!signedHeaders.SequenceEqual(signedHeaders.Order(StringComparer.Ordinal)))
            return ("SignatureDoesNotMatch", "SignedHeaders must be sorted.");
        foreach (var required in new[] { "host", "x-amz-date" })
            if (!signedHeaders.Contains(required))
                return ("SignatureDoesNotMatch", $"'{required}' must be a signed header.");

        if (!lower.TryGetValue("x-amz-date", out var amzDate) ||
            !DateTimeOffset.TryParseExact(amzDate, "yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var signedAt))
            return ("IncompleteSignature", "X-Amz-Date is missing or malformed.");
        if (amzDate[..8] != match.Groups["date"].Value)
            return ("SignatureDoesNotMatch", "The credential scope date does not match X-Amz-Date.");
        if ((now - signedAt).Duration() > TimeSpan.FromMinutes(5))
            return ("RequestExpired", $"Request has expired: signed at {amzDate}, now {now:yyyyMMdd'T'HHmmss'Z'}.");

        if (sessionToken is not null && (!lower.TryGetValue("x-amz-security-token", out var token) || token != sessionToken || !signedHeaders.Contains("x-amz-security-token")))
            return ("InvalidClientTokenId", "The session token is missing, wrong or not signed.");

        var canonicalHeaders = new StringBuilder();
        foreach (var name in signedHeaders)
        {
            if (!lower.TryGetValue(name, out var value))
                return ("SignatureDoesNotMatch", $"Signed header '{name}' is not in the request.");
            canonicalHeaders.Append(name).Append(':').Append(Regex.Replace(value.Trim(), " +", " ")).Append('\n');
        }

        var canonicalRequest = new StringBuilder()
            .Append(method).Append('\n')
            .Append(CanonicalPath(path)).Append('\n')
            .Append(CanonicalQuery(rawQuery)).Append('\n')
            .Append(canonicalHeaders).Append('\n')
            .Append(match.Groups["signed"].Value).Append('\n')
            .Append(HexSha256(body))
            .ToString();
        var expected = Signature(canonicalRequest, amzDate);
        return expected == match.Groups["signature"].Value
            ? null
            : ("SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. " +
                $"The Canonical String for this request should have been\n'{canonicalRequest}'");
    }

    /// <summary>The hex signature of a canonical request signed at <paramref name="amzDate"/> (also used with AWS's published test vectors).</summary>
    public string Signature(string canonicalRequest, string amzDate)
    {
        var stringToSign = $"AWS4-HMAC-SHA256\n{amzDate}\n{amzDate[..8]}/{region}/{service}/aws4_request\n{HexSha256(Encoding.UTF8.GetBytes(canonicalRequest))}";
        var key = Encoding.UTF8.GetBytes("AWS4" + secretAccessKey);
        foreach (var part in new[] { amzDate[..8], region, service, "aws4_request" })
            key = HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(part));
        return Convert.ToHexString(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(stringToSign))).ToLowerInvariant();
    }

    private static string CanonicalPath(string path) => path.Length == 0 ? "/" : path;

    private static string CanonicalQuery(string rawQuery) =>
        string.Join("&", rawQuery.Split('&', StringSplitOptions.RemoveEmptyEntries)
            .Select(pair =>
            {
                var equals = pair.IndexOf('=');
                var key = equals < 0 ? pair : pair[..equals];
                var value = equals < 0 ? "" : pair[(equals + 1)..];
                return (Key: Rfc3986(Uri.UnescapeDataString(key)), Value: Rfc3986(Uri.UnescapeDataString(value)));
            })
            .OrderBy(p => p.Key, StringComparer.Ordinal).ThenBy(p => p.Value, StringComparer.Ordinal)
            .Select(p => p.Key + "=" + p.Value));

    private static string Rfc3986(string value)
    {
        var builder = new StringBuilder();
        foreach (var b in Encoding.UTF8.GetBytes(value))
        {
            var c = (char)b;
            if (c is >= 'A' and <= 'Z' or >= 'a' and <= 'z' or >= '0' and <= '9' or '-' or '_' or '.' or '~')
                builder.Append(c);
            else
                builder.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
        }
        return builder.ToString();
    }

    private static string HexSha256(byte[] data) => Convert.ToHexString(SHA256.HashData(data)).ToLowerInvariant();
}
