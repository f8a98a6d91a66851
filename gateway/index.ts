/**
 * The gateway: OpenAI-compatible API paid with ecash, provider routing over the Owlrun protocol,
 * and (optionally) the bundled mint mounted at /mint. `startGateway` runs it on its own server.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { createServer, type Server } from "node:http";
import express, { type Express, type Request, type Response } from "express";
import {
  closeServer,
  createLogger,
  DEFAULT_HOST,
  jsonClientErrors,
  listen,
  type Logger,
} from "../src/shared/index.js";
import { accountRouter } from "./api/accounts.js";
import { chatHandler } from "./api/chat.js";
import { ApiError, errorMiddleware } from "./api/errors.js";
import { JobLog } from "./api/joblog.js";
import { earningsOf, providerRouter } from "./api/providers.js";
import { publicRouter } from "./api/public.js";
import { DEFAULT_PROVIDER_SHARE_PCT, Ledger, MIN_PROVIDER_SHARE_PCT } from "./ledger/index.js";
import { Market, type MarketOptions, marketRouter } from "./market/index.js";
import { Oracle } from "./oracle/index.js";
import { AccountPayments } from "./payments/account-payments.js";
import { AccountStore } from "./payments/accounts.js";
import { ProviderPayouts } from "./payments/payouts.js";
import { type ModelRate, PriceTable } from "./payments/pricing.js";
import { GatewayWallet } from "./payments/wallet.js";
import {
  type RecoveryReport,
  recoverAfterRestart,
  refundHold,
  takeRecoverySnapshot,
} from "./payments/recovery.js";
import { CashuPayments } from "./payments/xcashu.js";
import { type AckInfo, createRouting, type Dispatcher } from "./routing/index.js";

export { Ledger } from "./ledger/index.js";
export type { Market, MarketOptions } from "./market/index.js";

export const MAX_BODY_BYTES = 1024 * 1024;

export interface GatewayOptions {
  dataDir: string;
  /** mints whose tokens are accepted; the first is where clients are told to mint */
  trustedMints: string[];
  providerSharePct?: number;
  priceFeedUrl?: string;
  offlineBtcUsd?: number;
  modelRates?: Record<string, ModelRate>;
  signupOpen?: boolean;
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
  /** the task marketplace: fees, review window, delivery size, its own sweeper interval */
  market?: MarketOptions;
  log?: Logger;
}

export interface Gateway {
  app: Express;
  ledger: Ledger;
  wallet: GatewayWallet;
  /** the provider routing, for benchmarks and the composition root */
  dispatcher: Dispatcher;
  /** serves the provider WebSocket on this server */
  attach(server: Server): void;
  /** ends provider websockets (they keep server.close() waiting) */
  closeSockets(): void;
  payouts: ProviderPayouts;
  /** the task marketplace (its sweeper can be run directly: `market.sweep()`) */
  market: Market;
  /** refunds holds nobody is serving any more; returns how many */
  sweepStaleHolds(): Promise<number>;
  /** repairs what a crash left (call once the mints are reachable, i.e. after listen) */
  recover(): Promise<RecoveryReport>;
  close(): Promise<void>;
}

/** Wraps an async handler so thrown errors reach the error middleware (express 5 does this too). */
const handle =
  (fn: (req: Request, res: Response) => Promise<void>) =>
  (req: Request, res: Response, next: (e?: unknown) => void) =>
    fn(req, res).catch(next);

export async function createGateway(opts: GatewayOptions): Promise<Gateway> {
  const log = opts.log ?? createLogger("gateway");
  const share = opts.providerSharePct ?? DEFAULT_PROVIDER_SHARE_PCT;
  if (share < MIN_PROVIDER_SHARE_PCT || share > 100)
    throw new Error(`provider share must be ${MIN_PROVIDER_SHARE_PCT}..100`);
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });

  const ledger = Ledger.open(opts.dataDir);
  const wallet = await GatewayWallet.open(opts.dataDir, opts.trustedMints, log.child("wallet"));
  const oracle = new Oracle({
    feedUrl: opts.priceFeedUrl,
    offlineRate: opts.offlineBtcUsd,
    log: log.child("oracle"),
  });
  await oracle.start();
  const snapshot = await takeRecoverySnapshot(ledger);
  // Payouts look the node's Lightning address up in routing, which is created just below.
  const payouts = new ProviderPayouts(join(opts.dataDir, "payouts.sqlite"), ledger, wallet, {
    thresholdSat: opts.payoutThresholdSat,
    addressOf: (nodeId) => routing.node(nodeId)?.lightningAddress,
    mint: () => wallet.trustedMints[0]!,
    lnurl: { allowLoopbackHttp: opts.allowLoopbackLnurl },
    log: log.child("payouts"),
  });
  // What heartbeat_ack tells each node about its money: refreshed in the background, one beat behind.
  const acks = new Map<string, Partial<AckInfo>>();
  const refreshAck = (nodeId: string) => {
    void earningsOf({ ledger, wallet, routing, payouts, oracle }, nodeId)
      .then((e) => acks.set(nodeId, e))
      .catch(() => undefined);
  };
  const routing = createRouting({
    dataDir: opts.dataDir,
    log: log.child("routing"),
    signupOpen: opts.signupOpen,
    ackInfo: (nodeId) => {
      refreshAck(nodeId);
      const rate = oracle.rate();
      return {
        ...acks.get(nodeId),
        btc_live_usd: rate.btc_usd,
        btc_daily_avg: rate.btc_daily_avg,
        btc_price_status: rate.status,
      };
    },
  });
  const payoutTimer =
    opts.payoutIntervalMs === 0
      ? undefined
      : setInterval(() => void payouts.runOnce().catch(() => undefined), opts.payoutIntervalMs ?? 60_000);
  payoutTimer?.unref();
  const prices = new PriceTable(opts.modelRates);
  const payments = new CashuPayments(wallet, ledger, log);
  const accountStore = new AccountStore(join(opts.dataDir, "accounts.sqlite"));
  const jobs = new JobLog(join(opts.dataDir, "jobs.sqlite"));
  // Holds being served right now; anything else active and old was orphaned by an error.
  const live = new Set<string>();
  const staleMs = opts.staleHoldMs ?? 600_000;
  const sweepStaleHolds = async () => {
    let n = 0;
    for (const hold of await ledger.activeHolds()) {
      if (live.has(hold.id) || Date.now() - hold.updated_at < staleMs) continue;
      if (await refundHold(hold, ledger, wallet, log, "stale hold refunded by the sweeper")) n++;
    }
    if (n) log.warn("refunded stale holds", { count: n });
    return n;
  };
  const sweepEvery = opts.sweepIntervalMs ?? 60_000;
  const sweeper =
    sweepEvery > 0 ? setInterval(() => void sweepStaleHolds().catch(() => undefined), sweepEvery) : undefined;
  sweeper?.unref();
  const accounts = new AccountPayments(accountStore, ledger, wallet, log);
  const market = await Market.open(
    opts.dataDir,
    { ledger, accounts, cashu: payments, wallet, oracle, log: log.child("market") },
    opts.market,
  );
  market.start();

  const app = express();
  app.disable("x-powered-by");
  // Before the JSON parser: the market parses its own bodies (deliveries are larger than the limit).
  app.use(marketRouter({ market, accounts, maxBodyBytes: MAX_BODY_BYTES }));
  app.use(express.json({ limit: MAX_BODY_BYTES }));
  app.use(routing.router);
  const deps = {
    dispatcher: routing.dispatcher,
    payments,
    accounts,
    prices,
    oracle,
    providerSharePct: share,
    log,
    jobs,
    live,
    onSettled: (jobId: string, tokens: number, providerMsat: number) => {
      routing.jobComplete(jobId, { tokens, earnedUsd: (providerMsat / 1e11) * oracle.pricingRate() });
    },
  };
  app.post("/v1/chat/completions", handle(chatHandler("chat", deps)));
  app.post("/v1/completions", handle(chatHandler("completions", deps)));
  app.use(accountRouter({ accounts, ledger, wallet }));
  app.use(providerRouter({ ledger, wallet, routing, payouts, oracle }));
  app.use(
    publicRouter({
      dispatcher: routing.dispatcher,
      prices,
      oracle,
      wallet,
      providerSharePct: share,
      jobs,
    }),
  );
  app.use((req, _res, next) => next(new ApiError(404, "not_found", `no route ${req.method} ${req.path}`)));
  app.use(errorMiddleware(log));

  const detach: (() => void)[] = [];
  const closeSockets = () => {
    for (const d of detach.splice(0)) d();
  };
  return {
    app,
    ledger,
    wallet,
    dispatcher: routing.dispatcher,
    attach(server) {
      detach.push(routing.attachWebSocket(server));
    },
    closeSockets,
    sweepStaleHolds,
    async recover() {
      const report = await recoverAfterRestart(snapshot, ledger, wallet, log.child("recovery"));
      await payouts.recover();
      await market.sweep();
      return report;
    },
    payouts,
    market,
    async close() {
      closeSockets();
      if (payoutTimer) clearInterval(payoutTimer);
      if (sweeper) clearInterval(sweeper);
      await routing.close();
      payouts.close();
      oracle.stop();
      await wallet.close();
      accountStore.close();
      jobs.close();
      await market.close();
      await ledger.close();
    },
  };
}

/** A mint served by the same HTTP server (the composition root mounts the bundled mint here). */
export interface BundledMint {
  /** URL path it is mounted at, e.g. "/mint" */
  path: string;
  /** mounts routes and websockets; returns how to end its sockets and how to close it */
  mount(app: Express, server: Server): { closeSockets(): void; close(): Promise<void> };
  /** told the public URL once the server listens */
  listening?(url: string): void;
}

export interface RunningGateway {
  url: string;
  gateway: Gateway;
  server: Server;
  close(): Promise<void>;
}

/**
 * Runs the gateway on its own HTTP server. `mount` lets the composition root add routes first
 * (the bundled mint at /mint) and `beforeClose` tear them down.
 */
export async function startGateway(
  opts: GatewayOptions & { host?: string; port: number; bundledMint?: BundledMint },
): Promise<RunningGateway> {
  const gateway = await createGateway(opts);
  const outer = express();
  outer.disable("x-powered-by");
  // Big enough for a cashu token of many proofs in X-Cashu (our own limit, 64 KiB, answers in JSON).
  const server = createServer({ maxHeaderSize: 128 * 1024 }, outer);
  jsonClientErrors(server);
  const mounted = opts.bundledMint?.mount(outer, server);
  outer.use(gateway.app);
  gateway.attach(server);
  const url = await listen(server, opts.host ?? DEFAULT_HOST, opts.port);
  if (opts.bundledMint) {
    gateway.wallet.trust(`${url}${opts.bundledMint.path}`, true);
    opts.bundledMint.listening?.(`${url}${opts.bundledMint.path}`);
  }
  await gateway.recover();
  return {
    url,
    gateway,
    server,
    async close() {
      // Sockets first (they hold server.close()), then in-flight requests drain, then the stores.
      gateway.closeSockets();
      mounted?.closeSockets();
      await closeServer(server);
      await gateway.close();
      await mounted?.close();
    },
  };
}
