// Drives a ELBv2 Query API endpoint with the official AWS SDK for JavaScript v3, one call per input line.
// stdin:  {"endpoint", "region", "credentials": {accessKeyId, secretAccessKey, sessionToken?}, "calls": [{"command", "input"}]}
// stdout: one JSON line per call: {"command", "output"} (the SDK's parsed answer without $metadata) or
//         {"command", "error": {name, message, fault, httpStatusCode, modeled}}; modeled: the SDK knew the error code and
//         raised its own exception class for it.
import * as elbv2 from "@aws-sdk/client-elastic-load-balancing-v2";

const plan = JSON.parse(await new Promise((resolve) => {
  let text = "";
  process.stdin.setEncoding("utf8").on("data", (c) => (text += c)).on("end", () => resolve(text));
}));
// One attempt: the test asserts what the server answered, not what a retry made of it.
const client = new elbv2.ElasticLoadBalancingV2Client({
  region: plan.region, endpoint: plan.endpoint, credentials: plan.credentials, maxAttempts: 1,
});
for (const call of plan.calls) {
  const Command = elbv2[`${call.command}Command`];
  if (!Command) throw new Error(`the SDK has no ${call.command}Command`);
  try {
    const { $metadata, ...output } = await client.send(new Command(call.input));
    console.log(JSON.stringify({ command: call.command, output }));
  } catch (e) {
    if (!e.$metadata) throw e;
    console.log(JSON.stringify({ command: call.command, error: { name: e.name, message: e.message, fault: e.$fault, httpStatusCode: e.$metadata.httpStatusCode,
      modeled: e.constructor !== elbv2.ElasticLoadBalancingV2ServiceException && e instanceof elbv2.ElasticLoadBalancingV2ServiceException } }));
  }
}
client.destroy();
