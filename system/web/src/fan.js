// What every fan page sets up first: the stack's settings, the fan's
// identity and a DynamoDB client signed with that identity's credentials.
import { cognitoClient, dynamoClient } from "./aws.js";
import { loadConfig } from "./config.js";
import { fanIdentity } from "./identity.js";
import { sleep, withRetry } from "./trouble.js";

/** Return {config, cognito, fanId, dynamodb} for this browser, retrying on trouble. */
export async function connect(view) {
  const retry = { onTrouble: view.trouble, sleep };
  const config = await withRetry(() => loadConfig(fetch, location.search), retry);
  const cognito = cognitoClient(config);
  const fanId = await withRetry(
    () =>
      fanIdentity(
        cognito,
        config.identity_pool_id,
        config.sale_id,
        localStorage,
        navigator.locks,
      ),
    retry,
  );
  return { config, cognito, fanId, dynamodb: dynamoClient(config, cognito, fanId) };
}
