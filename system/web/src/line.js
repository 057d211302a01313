// The only DynamoDB calls a fan makes: join once, then read the own item and
// the sale's counters. Names follow system/schema.py.
import { GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { plainItem } from "./standing.js";

/**
 * Write the fan's join item; return false when the fan had joined already.
 *
 * The write is conditional, so a refresh or a second tab never replaces the
 * item the forwarder has numbered.
 */
export async function joinLine(dynamodb, config, fanId, nowMs = Date.now()) {
  const command = new PutItemCommand({
    TableName: config.queue_table,
    Item: {
      fan_id: { S: fanId },
      sale_id: { S: config.sale_id },
      client_time: { N: String(Math.round(nowMs)) },
      synthetic: { BOOL: false },
    },
    ConditionExpression: "attribute_not_exists(fan_id)",
  });
  try {
    await dynamodb.send(command);
    return true;
  } catch (error) {
    if (error.name === "ConditionalCheckFailedException") return false;
    throw error;
  }
}

// Eventually consistent reads cost half as much, and a poll that is a second
// behind only delays the next one; the crowd's polls are the largest load.
async function getItem(dynamodb, table, key) {
  const answer = await dynamodb.send(new GetItemCommand({ TableName: table, Key: key }));
  return plainItem(answer.Item);
}

/** Return the fan's item as a plain object, or null before the join is seen. */
export function readFan(dynamodb, config, fanId) {
  return getItem(dynamodb, config.queue_table, { fan_id: { S: fanId } });
}

/** Return the sale's item (configuration and counters), or null if unknown. */
export function readSale(dynamodb, config) {
  return getItem(dynamodb, config.sales_table, { sale_id: { S: config.sale_id } });
}
