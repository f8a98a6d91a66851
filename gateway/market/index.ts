/**
 * The task marketplace with escrow (door of gateway/market): `Market` (rules and money),
 * `marketRouter` (the /v1/market routes) and the zod wire schemas.
 */
export {
  CollectFailedError,
  DeliveryTooLargeError,
  MarketConflictError,
  MarketError,
  MarketForbiddenError,
  MarketNotFoundError,
} from "./errors.js";
export { marketRouter, marketRoutes, type MarketHttpDeps } from "./http.js";
export {
  type CashuPayer,
  type FeeReceipt,
  Market,
  type MarketDeps,
  type MarketOptions,
  type SweepReport,
} from "./market.js";
export { copyMarketFromSqlite, type MarketCopyCounts } from "./copy.js";
export { MARKET_MIGRATIONS, PgMarketStore } from "./pg-store.js";
export { SqliteMarketStore } from "./sqlite-store.js";
export type { CollectionRow, MarketStore, QuoteRow, TaskRow } from "./store.js";
export * from "./schemas.js";
export {
  FINAL_STATES,
  QUOTE_STATES,
  QUOTE_TRANSITIONS,
  TASK_STATES,
  TASK_TRANSITIONS,
  type QuoteState,
  type TaskAction,
  type TaskState,
} from "./states.js";
