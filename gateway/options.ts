/**
 * What a gateway is given (`GatewayOptions`) and what it hands back (`Gateway`): the contract between
 * the composition root (src/cli.ts, tests, benchmarks) and `createGateway`.
 */
import type { Server } from "node:http";
import type { Express } from "express";
import type { Logger, PgDatabase } from "../src/shared/index.js";
import type { RouteGroup } from "../src/shared/discovery/index.js";
import type { ModelAliases } from "./api/aliases.js";
import type { PaymentMethod } from "./api/paywall.js";
import type { Cluster } from "./cluster/index.js";
import type { Ledger } from "./ledger/index.js";
import type { Market, MarketOptions } from "./market/index.js";
import type { FreeTierLimits } from "./payments/account-payments.js";
import type { BusinessTier } from "./payments/accounts.js";
import type { BsvOptions } from "./payments/bsv.js";
import type { ProviderPayouts } from "./payments/payouts.js";
import type { ModelRate } from "./payments/pricing.js";
import type { RecoveryReport } from "./payments/recovery.js";
import type { GatewayWallet } from "./payments/wallet.js";
import type { Dispatcher, Routing, UpstreamsFile } from "./routing/index.js";
import type { RetentionOptions, RetentionReport } from "./retention.js";

export interface GatewayOptions {
  dataDir: string;
  /** mints whose tokens are accepted; the first is where clients are told to mint */
  trustedMints: string[];
  providerSharePct?: number;
  priceFeedUrl?: string;
  offlineBtcUsd?: number;
  modelRates?: Record<string, ModelRate>;
  /** the operator's price file (USD per model, a default for the rest), reloaded on change */
  pricesFile?: string;
  /**
   * OpenAI-compatible upstream providers serving next to the nodes (`--upstream FILE`, read at
   * start), or the same document already parsed (validated by the same schema)
   */
  upstreamsFile?: string;
  upstreams?: UpstreamsFile;
  signupOpen?: boolean;
  /** what free-tier requests may cost: max_tokens cap and a daily gateway-wide budget */
  freeTier?: FreeTierLimits;
  /** how often pending Lightning top-ups are checked at the mint and credited (default 5 s; 0: only on requests) */
  topupPollMs?: number;
  /** `POST /v1/auth/register` per client address (IPv6: per /64) per hour; unset: no limit (the CLI sets 20) */
  accountSignupsPerHour?: number;
  /** provider earnings at or above this are paid out over Lightning (default 1,000 sats) */
  payoutThresholdSat?: number;
  /** how often payouts run (default 60 s; 0 disables the loop) */
  payoutIntervalMs?: number;
  /** tests and local networks: Lightning addresses on http://127.0.0.1 */
  allowLoopbackLnurl?: boolean;
  /** a hold not being served by this process and older than this is refunded (default 10 min) */
  staleHoldMs?: number;
  /** how often the sweeper runs (default 60 s; 0 disables the loop) */
  sweepIntervalMs?: number;
  /** ways to pay paid routes (default: xcashu, accounts, l402, and bsv when configured) */
  paymentMethods?: PaymentMethod[];
  /** BSVAPI-style on-chain payments; disabled unless set */
  bsv?: BsvOptions;
  /** business key discounts by tier (default internal 50 %, partner 25 %, external 0 %) */
  tierDiscounts?: Record<BusinessTier, number>;
  /** how long an L402 macaroon is valid (default 600 s) */
  l402TtlSeconds?: number;
  /** 402 challenges (each a mint quote) one client address may get per minute (default 60) */
  challengesPerMinute?: number;
  /** the built browser chat served at / (default: dist/web next to the compiled gateway) */
  webDir?: string;
  /** the model clients use when they name none (GET /v1/info default_model), while it is online */
  defaultModel?: string;
  /** the URL clients reach this gateway at, for the discovery documents (default: where it listens) */
  publicUrl?: string;
  /** the owlrun-mcp server card pointing at this gateway (the composition root supplies it) */
  mcpServerCard?: (gatewayUrl: string) => unknown;
  /** routes mounted next to the gateway on the same server (the bundled mint), for OpenAPI */
  mountedRoutes?: RouteGroup[];
  /** model names mapped to served models (`--model-alias`); default: only `claude-…` → the most served */
  modelAliases?: ModelAliases;
  /** the task marketplace: fees, review window, delivery size, its own sweeper interval */
  market?: MarketOptions;
  /** how long history no hot path needs is kept, and how often it is compacted */
  retention?: RetentionOptions;
  /** PostgreSQL shared by several gateway processes (`--database-url`); default: SQLite files in dataDir */
  database?: PgDatabase;
  /** with `database`: how often processes publish and read presence, and notice a dead peer (default 1 s) */
  clusterBeatMs?: number;
  /** with `database`: how often this process reads the shared BTC/USD samples and average (default 5 s) */
  oracleSyncMs?: number;
  log?: Logger;
}

export interface Gateway {
  app: Express;
  ledger: Ledger;
  wallet: GatewayWallet;
  /** the provider routing, for benchmarks and the composition root */
  dispatcher: Dispatcher;
  /** the nodes (every process's, with a database), their status and keys */
  routing: Routing;
  /** serves the provider WebSocket on this server */
  attach(server: Server): void;
  /** every route this gateway's server answers, as documented in /openapi.json */
  routeGroups(): RouteGroup[];
  /** told the listening URL (the discovery documents use it unless publicUrl is set) */
  listening(url: string): void;
  /** ends provider websockets (they keep server.close() waiting) */
  closeSockets(): void;
  payouts: ProviderPayouts;
  /** the task marketplace (its sweeper can be run directly: `market.sweep()`) */
  market: Market;
  /** with a database: this process's membership of the cluster of gateway processes */
  cluster?: Cluster;
  /** refunds holds nobody is serving any more; returns how many */
  sweepStaleHolds(): Promise<number>;
  /** forgets unpaid L402 challenges past expiry (the sweeper does it too); returns how many */
  pruneUnpaidChallenges(now?: number): Promise<number>;
  /** forgets history no hot path needs (runs on a schedule too; `now` moves the cut-offs) */
  compactHistory(now?: number): Promise<RetentionReport>;
  /** repairs what a crash left (call once the mints are reachable, i.e. after listen) */
  recover(): Promise<RecoveryReport>;
  close(): Promise<void>;
}
