/**
 * What the market refuses, as typed errors the gateway's error middleware turns into
 * `{"error":{"message","type","code"}}`: 404 no such thing, 403 not your part, 409 not now.
 */
import { AppError } from "../../src/shared/index.js";

export class MarketError extends AppError {}

/** No such task, quote or delivery. */
export class MarketNotFoundError extends MarketError {
  constructor(message: string) {
    super(message, "not_found", 404);
  }
}

/** The caller is not the party who may do this. */
export class MarketForbiddenError extends MarketError {
  constructor(message: string) {
    super(message, "forbidden", 403);
  }
}

/** The task or quote is not in a state that allows this (or someone else got there first). */
export class MarketConflictError extends MarketError {
  constructor(message: string) {
    super(message, "invalid_state", 409);
  }
}

/** A delivery over the size limit. */
export class DeliveryTooLargeError extends MarketError {
  constructor(sizeBytes: number, limitBytes: number) {
    super(`the delivery is ${sizeBytes} bytes; the limit is ${limitBytes}`, "request_too_large", 413);
  }
}

/** The Lightning payment of a collect failed; nothing left the account. */
export class CollectFailedError extends MarketError {
  constructor(detail: string) {
    super(`the Lightning payment failed (${detail}); your balance is unchanged`, "payment_failed", 502);
  }
}
