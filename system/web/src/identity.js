// The fan's Cognito identity ids, kept in localStorage. An identity id is
// the key of the fan's item in the queue table, and one item holds one
// place, so the browser keeps one identity per sale it queues for.
import { GetIdCommand } from "@aws-sdk/client-cognito-identity";

// The identity the last page used. The purchase page falls back to it.
export const FAN_ID_KEY = "boxoffice.fan_id";
// JSON object from sale id to the identity that holds that sale's place.
export const SALE_FANS_KEY = "boxoffice.sale_fans";
// The pool the stored ids came from: a new stack has a new pool, where the
// old ids mean nothing.
export const POOL_KEY = "boxoffice.identity_pool";
const LOCK_NAME = "boxoffice.identity";

function readSaleFans(storage) {
  try {
    const saleFans = JSON.parse(storage.getItem(SALE_FANS_KEY) ?? "{}");
    return saleFans && typeof saleFans === "object" ? saleFans : {};
  } catch {
    return {};
  }
}

function forgetPool(storage) {
  for (const key of [FAN_ID_KEY, SALE_FANS_KEY, POOL_KEY]) storage.removeItem(key);
}

/**
 * Return the fan's identity id for a sale, asking Cognito only for a new one.
 *
 * A sale keeps the identity it got first. A sale seen for the first time
 * reuses the last identity unless that identity holds another sale's place.
 * Tabs of one browser take a Web Lock around this, so two tabs opened at
 * once share one identity, and so one place in line.
 */
export async function fanIdentity(cognito, poolId, saleId, storage, locks) {
  const pick = async () => {
    if (storage.getItem(POOL_KEY) !== poolId) forgetPool(storage);
    const saleFans = readSaleFans(storage);
    let fanId = saleFans[saleId];
    if (!fanId) {
      const last = storage.getItem(FAN_ID_KEY);
      const taken = Object.values(saleFans).includes(last);
      if (last && !taken) {
        fanId = last;
      } else {
        const answer = await cognito.send(new GetIdCommand({ IdentityPoolId: poolId }));
        fanId = answer.IdentityId;
      }
      saleFans[saleId] = fanId;
      storage.setItem(SALE_FANS_KEY, JSON.stringify(saleFans));
    }
    storage.setItem(FAN_ID_KEY, fanId);
    storage.setItem(POOL_KEY, poolId);
    return fanId;
  };
  return locks ? locks.request(LOCK_NAME, pick) : pick();
}

/**
 * Record that `fanId` holds a place in `otherSaleId`, not in `saleId`, so the
 * next fanIdentity call for `saleId` gets a new identity.
 */
export function moveFanId(storage, fanId, otherSaleId, saleId) {
  const saleFans = readSaleFans(storage);
  saleFans[otherSaleId] = fanId;
  if (saleFans[saleId] === fanId) delete saleFans[saleId];
  storage.setItem(SALE_FANS_KEY, JSON.stringify(saleFans));
}
