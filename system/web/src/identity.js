// The fan's Cognito identity id, kept in localStorage: it is the key of the
// fan's item in the queue table, so keeping it keeps the fan's place.
import { GetIdCommand } from "@aws-sdk/client-cognito-identity";

export const FAN_ID_KEY = "boxoffice.fan_id";
// The pool the stored id came from: a new stack has a new pool, where the old
// id means nothing.
export const POOL_KEY = "boxoffice.identity_pool";
const LOCK_NAME = "boxoffice.identity";

/** Return the stored fan id for this pool, or null. */
export function storedFanId(storage, poolId) {
  const fanId = storage.getItem(FAN_ID_KEY);
  return fanId && storage.getItem(POOL_KEY) === poolId ? fanId : null;
}

/**
 * Return the fan's identity id, asking Cognito for one only the first time.
 *
 * Tabs of one browser take a Web Lock around the check and the GetId call,
 * so two tabs opened at once share one identity, and so one place in line.
 */
export async function fanIdentity(cognito, poolId, storage, locks) {
  const known = storedFanId(storage, poolId);
  if (known) return known;
  const create = async () => {
    const raced = storedFanId(storage, poolId);
    if (raced) return raced;
    const answer = await cognito.send(new GetIdCommand({ IdentityPoolId: poolId }));
    storage.setItem(FAN_ID_KEY, answer.IdentityId);
    storage.setItem(POOL_KEY, poolId);
    return answer.IdentityId;
  };
  return locks ? locks.request(LOCK_NAME, create) : create();
}

/** Drop the stored identity, so the next call to fanIdentity makes a new one. */
export function forgetFanId(storage, fanId) {
  if (storage.getItem(FAN_ID_KEY) === fanId) {
    storage.removeItem(FAN_ID_KEY);
    storage.removeItem(POOL_KEY);
  }
}
