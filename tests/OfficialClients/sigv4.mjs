// Signs requests with the official @smithy/signature-v4 and prints each Authorization header.
// stdin:  {"region", "service", "credentials": {accessKeyId, secretAccessKey, sessionToken?}, "requests": [
//          {"method", "url", "headers": {name: value}, "body" (UTF-8 text), "signingDate" (ISO 8601)}]}
// stdout: one JSON line per request: {"authorization", "headers"} (every header the signer set or kept).
import { SignatureV4 } from "@smithy/signature-v4";
import { Hash } from "@smithy/hash-node";

const plan = JSON.parse(await new Promise((resolve) => {
  let text = "";
  process.stdin.setEncoding("utf8").on("data", (c) => (text += c)).on("end", () => resolve(text));
}));
const signer = new SignatureV4({
  service: plan.service, region: plan.region, credentials: plan.credentials,
  sha256: Hash.bind(null, "sha256"),
  // The Query API signs the body hash but does not send it as x-amz-content-sha256 (that header is S3's).
  applyChecksum: false,
});
for (const r of plan.requests) {
  const url = new URL(r.url);
  const query = {};
  for (const [k, v] of url.searchParams) query[k] = k in query ? [].concat(query[k], v) : v;
  const signed = await signer.sign({
    method: r.method, protocol: url.protocol, hostname: url.hostname, port: url.port ? Number(url.port) : undefined,
    path: url.pathname, query, headers: { ...r.headers }, body: r.body,
  }, { signingDate: new Date(r.signingDate) });
  console.log(JSON.stringify({ authorization: signed.headers.authorization, headers: signed.headers }));
}
