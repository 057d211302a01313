// SDK clients for the fan's browser: Cognito for the identity and its
// credentials, DynamoDB for the fan's item and the sale's counters.
import { CognitoIdentityClient } from "@aws-sdk/client-cognito-identity";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { fromCognitoIdentity } from "@aws-sdk/credential-provider-cognito-identity";

// One attempt per call: the page does its own backing off, so it can tell
// the fan that it is retrying instead of hanging silently.
const SDK_ATTEMPTS = 1;

// NOTE: MiniStack 1.5.33 answers every CORS preflight with
// "Access-Control-Allow-Headers: *". The Fetch standard leaves Authorization
// out of that wildcard, so a browser that enforces it rejects the signed
// DynamoDB calls on the embedded stack. Chromium 156 accepts them.
function endpointOptions(config) {
  const options = { region: config.region, maxAttempts: SDK_ATTEMPTS };
  // No endpoint URL means the real AWS endpoints of the region.
  if (config.endpoint_url) options.endpoint = config.endpoint_url;
  return options;
}

/** Return a Cognito Identity client; GetId and the credentials call are unsigned. */
export function cognitoClient(config) {
  return new CognitoIdentityClient(endpointOptions(config));
}

/** Return a DynamoDB client that signs with the fan's Cognito credentials. */
export function dynamoClient(config, cognito, fanId) {
  return new DynamoDBClient({
    ...endpointOptions(config),
    credentials: fromCognitoIdentity({ client: cognito, identityId: fanId }),
  });
}
