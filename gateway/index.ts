/**
 * The gateway: OpenAI-compatible API paid with ecash, provider routing over the Owlrun protocol,
 * and (optionally) the bundled mint mounted at /mint. `startGateway` runs it on its own server.
 *
 * The door of gateway/: `create.ts` opens the stores and wires the parts, `app.ts` assembles the
 * HTTP app, `timers.ts` the periodic work, `holds.ts` the stale-hold sweep and restart repair,
 * `server.ts` the HTTP server, `operator.ts` the operator's shell commands on a data dir.
 */
export { createGateway } from "./create.js";
export type { Gateway, GatewayOptions } from "./options.js";
export { MAX_BODY_BYTES } from "./app.js";
export { type BundledMint, type RunningGateway, startGateway } from "./server.js";
export { createBusinessKey, setBusinessCreditLimit, withBroadcasts } from "./operator.js";
export { Ledger } from "./ledger/index.js";
export { PAYMENT_METHODS, type PaymentMethod } from "./api/paywall.js";
export { ModelAliases } from "./api/aliases.js";
export { BUSINESS_TIERS, type BusinessTier } from "./payments/accounts.js";
export type { Market, MarketOptions } from "./market/index.js";
export type { RetentionOptions, RetentionReport } from "./retention.js";
export type { Cluster } from "./cluster/index.js";
export {
  formatMigrationReport,
  type MigrationReport,
  MigrationRefusedError,
  migrateSqliteGateway,
} from "./migrate.js";
export {
  adminToken,
  adminTokenOf,
  BROADCAST_LEVELS,
  type Broadcast,
  type PublishBroadcast,
} from "./broadcasts/index.js";
