using Amazon.Runtime;
using Amazon.Runtime.Internal.Auth;

namespace ControlPlane.IntegrationTests.Aws;

/// <summary>The fake's SigV4 verifier is itself checked against AWS's published test vector and AWSSDK.Core's key derivation.</summary>
public sealed class SigV4Tests
{
    // From the AWS Signature Version 4 test suite ("get-vanilla").
    private const string VanillaCanonicalRequest =
        "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    private const string VanillaSignature = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
    private const string ExampleAccessKey = "AKIDEXAMPLE";
    private const string ExampleSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    [Fact]
    public void The_verifier_reproduces_the_published_get_vanilla_signature()
    {
        var verifier = new SigV4Verifier(ExampleAccessKey, ExampleSecret, "us-east-1", "service");

        Assert.Equal(VanillaSignature, verifier.Signature(VanillaCanonicalRequest, "20150830T123600Z"));
    }

    [Fact]
    public void The_verifier_accepts_the_published_get_vanilla_request_and_rejects_a_tampered_one()
    {
        var verifier = new SigV4Verifier(ExampleAccessKey, ExampleSecret, "us-east-1", "service");
        var headers = new Dictionary<string, string>
        {
            ["Host"] = "example.amazonaws.com",
            ["X-Amz-Date"] = "20150830T123600Z",
            ["Authorization"] = $"AWS4-HMAC-SHA256 Credential={ExampleAccessKey}/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature={VanillaSignature}",
        };
        var at = new DateTimeOffset(2015, 8, 30, 12, 36, 0, TimeSpan.Zero);

        Assert.Null(verifier.Check("GET", "/", "", headers, [], at));
        Assert.Equal("SignatureDoesNotMatch", verifier.Check("GET", "/", "", headers, "x"u8.ToArray(), at)?.Code);
        Assert.Equal("SignatureDoesNotMatch", verifier.Check("POST", "/", "", headers, [], at)?.Code);
        Assert.Equal("RequestExpired", verifier.Check("GET", "/", "", headers, [], at.AddMinutes(6))?.Code);
    }

    [Fact]
    public void The_verifier_agrees_with_the_signature_AWSSDK_Core_computes()
    {
        const string canonical = "POST\n/\n\ncontent-type:application/x-www-form-urlencoded; charset=utf-8\nhost:127.0.0.1:1234\nx-amz-date:20260102T030405Z\n\n" +
                                 "content-type;host;x-amz-date\n0f0e0d0c0b0a09080706050403020100f0e0d0c0b0a09080706050403020100f";
        var verifier = new SigV4Verifier(FakeElbV2.AccessKeyId, FakeElbV2.SecretAccessKey, FakeElbV2.Region, "elasticloadbalancing");

        var sdk = AWS4Signer.ComputeSignature(new ImmutableCredentials(FakeElbV2.AccessKeyId, FakeElbV2.SecretAccessKey, null),
            FakeElbV2.Region, new DateTime(2026, 1, 2, 3, 4, 5, DateTimeKind.Utc), "elasticloadbalancing", "content-type;host;x-amz-date", canonical);

        Assert.Equal(sdk.Signature, verifier.Signature(canonical, "20260102T030405Z"));
    }
}
