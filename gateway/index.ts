/**
 * The gateway: OpenAI-compatible API paid with ecash, provider routing over the Owlrun protocol,
 * and (optionally) the bundled mint mounted at /mint. `startGateway` runs it on its own server.
 */
import { join } from "node:path";
import { createServer, type Server } from "node:http";
import express, { type Express, type Request, type Response } from "express";
import {
  closeServer,
  createLogger,
  DEFAULT_HOST,
  inProcessFetch,
  jsonClientErrors,
  listen,
  type Logger,
  type PgDatabase,
  privateDir,
} from "../src/shared/index.js";
import type { RouteGroup } from "../src/shared/discovery/index.js";
import { accountRouter, accountRoutes } from "./api/accounts.js";
import { seedAliases } from "./api/seed-paths.js";
import { broadcastRouter, broadcastRoutes } from "./api/broadcasts.js";
import { routstrRouter, routstrRoutes } from "./api/routstr.js";
import { adminTokenOf, type BroadcastStore, openBroadcastStore } from "./broadcasts/index.js";
import { chatHandler, chatRoutes } from "./api/chat.js";
import { discoveryRouter, discoveryRoutes } from "./api/discovery.js";
import { ApiError, errorMiddleware } from "./api/errors.js";
import { openJobLog } from "./api/joblog.js";
import { ollamaRouter, ollamaRoutes } from "./api/ollama.js";
import { ModelAliases } from "./api/aliases.js";
import { anthropicRouter, anthropicRoutes } from "./api/anthropic/index.js";
import { responsesHandler, responsesRoutes } from "./api/responses/index.js";
import { embeddingsRouter, embeddingsRoutes, ollamaEmbedRoutes } from "./api/embeddings/index.js";
import { ollamaBodyParser, ollamaFallback, ollamaMetaRouter, ollamaMetaRoutes } from "./api/ollama-meta.js";
import { earningsOf, providerApiRoutes, providerRouter } from "./api/providers.js";
import { payRouter, payRoutes, repairClaimedTopups } from "./api/pay.js";
import { PAYMENT_METHODS, type PaymentMethod, type Paywall } from "./api/paywall.js";
import { publicRouter, publicRoutes } from "./api/public.js";
import { defaultWebDir, webRouter, webRoutes } from "./api/web.js";
import { DEFAULT_PROVIDER_SHARE_PCT, Ledger, MIN_PROVIDER_SHARE_PCT } from "./ledger/index.js";
import { Market, type MarketOptions, marketRouter, marketRoutes } from "./market/index.js";
import { Oracle, PgOracleStore } from "./oracle/index.js";
import { AccountPayments, DEFAULT_FREE_TIER, type FreeTierLimits } from "./payments/account-payments.js";
import type { BusinessTier } from "./payments/accounts.js";
import { openAccountStore } from "./payments/accounts-pg.js";
import { type BsvOptions, BsvPayments } from "./payments/bsv.js";
import { L402Payments, l402RootKey } from "./payments/l402.js";
import { oneShotAccount, type OneShotRegistry, OneShotStore } from "./payments/oneshot.js";
import { PgOneShotStore } from "./payments/oneshot-pg.js";
import { RateLimiter } from "./payments/ratelimit.js";
import { ProviderPayouts } from "./payments/payouts.js";
import { openPayoutStore } from "./payments/payout-store.js";
import { type ModelRate, PriceTable } from "./payments/pricing.js";
import { watchedPriceTable } from "./payments/price-file.js";
import { GatewayWallet } from "./payments/wallet.js";
import {
  type RecoveryReport,
  recoverAfterRestart,
  refundHold,
  takeRecoverySnapshot,
} from "./payments/recovery.js";
import { CashuPayments } from "./payments/xcashu.js";
import {
  type AckInfo,
  createRouting,
  type Dispatcher,
  type Routing,
  nodeRoutes,
  parseUpstreams,
  readUpstreamsFile,
  openRoutingStore,
  SignupLimiter,
  UpstreamConfigError,
  upstreamPriceFloors,
  type UpstreamsFile,
} from "./routing/index.js";
import { retention, type RetentionOptions, type RetentionReport } from "./retention.js";
import { type Cluster, joinCluster, serially } from "./cluster/index.js";

export { Ledger } from "./ledger/index.js";
export { PAYMENT_METHODS, type PaymentMethod } from "./api/paywall.js";
export { ModelAliases } from "./api/aliases.js";
export { BUSINESS_TIERS, type BusinessTier } from "./payments/accounts.js";

/**
 * A business key (`bsvapi_sk_…` with a tier) made by the operator from the shell; the key is shown
 * once. With a credit limit (sats) it is metered: used with no payment header, billed monthly.
 */
export async function createBusinessKey(
  dataDir: string,
  tier: BusinessTier,
  name: string | null,
  database?: PgDatabase,
  creditLimitSat = 0,
): Promise<{ id: string; key: string }> {
  privateDir(dataDir);
  const store = await openAccountStore(dataDir, database);
  try {
    return await store.registerBusiness(name, tier, creditLimitSat);
  } finally {
    store.close();
  }
}

/**
 * Changes the credit limit of an existing business key (0: prepaid again; what it owes stays owed).
 * A running gateway reads the limit at every request, so it applies at once. False: no such key.
 */
export async function setBusinessCreditLimit(
  dataDir: string,
  accountId: string,
  creditLimitSat: number,
  database?: PgDatabase,
): Promise<boolean> {
  privateDir(dataDir);
  const store = await openAccountStore(dataDir, database);
  try {
    return await store.setCreditLimit(accountId, creditLimitSat);
  } finally {
    store.close();
  }
}
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

/** Runs `fn` on a data dir's broadcast store (the CLI publishes and expires while the gateway runs). */
export async function withBroadcasts<T>(
  dataDir: string,
  fn: (store: BroadcastStore) => Promise<T>,
  database?: PgDatabase,
): Promise<T> {
  const store = await openBroadcastStore(dataDir, database);
  try {
    return await fn(store);
  } finally {
    store.close();
  }
}

export const MAX_BODY_BYTES = 1024 * 1024;

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
  privateDir(opts.dataDir);
  // First: a bad upstreams or price file stops the start before anything is opened.
  const upstreams = [
    ...(opts.upstreamsFile ? readUpstreamsFile(opts.upstreamsFile) : []),
    ...(opts.upstreams ? parseUpstreams(opts.upstreams, "GatewayOptions.upstreams") : []),
  ];
  const names = upstreams.map((u) => u.name);
  if (new Set(names).size !== names.length) throw new UpstreamConfigError("upstream names must be unique");
  const priceFile = opts.pricesFile ? watchedPriceTable(opts.pricesFile, log.child("prices")) : undefined;
  const prices = priceFile?.prices ?? new PriceTable(opts.modelRates);
  // An upstream's prices are the least its models sell at, whoever serves them.
  if (upstreams.length) {
    prices.setFloors(upstreamPriceFloors(upstreams));
    log.info("upstream providers", {
      upstreams: upstreams.map((u) => ({ name: u.name, models: [...u.chat.keys(), ...u.embeddings.keys()] })),
    });
  }

  const ledger = Ledger.open(opts.dataDir, opts.database);
  await ledger.ready();
  const wallet = await GatewayWallet.open(
    opts.dataDir,
    opts.trustedMints,
    log.child("wallet"),
    opts.database,
  );
  const oracle = new Oracle({
    feedUrl: opts.priceFeedUrl,
    statePath: join(opts.dataDir, "oracle-published.json"),
    offlineRate: opts.offlineBtcUsd,
    log: log.child("oracle"),
    // Several processes: shared samples and published average, the feed asked once per period
    // (started below, once the cluster is joined).
    ...(opts.database
      ? {
          store: await PgOracleStore.open(opts.database),
          once: (name: string, periodMs: number, fn: () => Promise<unknown>) =>
            background(name, periodMs, fn),
          syncMs: opts.oracleSyncMs,
        }
      : {}),
  });
  if (!opts.database) await oracle.start();
  const snapshot = await takeRecoverySnapshot(ledger);
  // Payouts look the node's Lightning address up in routing, which is created just below.
  const payouts = new ProviderPayouts(await openPayoutStore(opts.dataDir, opts.database), ledger, wallet, {
    thresholdSat: opts.payoutThresholdSat,
    addressOf: async (nodeId) => (await routing.node(nodeId))?.lightningAddress,
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
    store: await openRoutingStore(opts.dataDir, opts.database),
    log: log.child("routing"),
    signupOpen: opts.signupOpen,
    allowLoopbackLnurl: opts.allowLoopbackLnurl,
    upstreams,
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
  // Several processes on one database: background work runs in one of them per period.
  let cluster: Cluster | undefined;
  const background = <T>(name: string, periodMs: number, fn: () => Promise<T>) =>
    cluster ? cluster.once(name, periodMs, fn) : fn();
  const payoutEvery = opts.payoutIntervalMs ?? 60_000;
  const payoutTimer =
    opts.payoutIntervalMs === 0
      ? undefined
      : setInterval(
          () => void background("payouts", payoutEvery, () => payouts.runOnce()).catch(() => undefined),
          payoutEvery,
        );
  payoutTimer?.unref();
  const payments = new CashuPayments(wallet, ledger, log);
  const accountStore = await openAccountStore(opts.dataDir, opts.database);
  const jobs = await openJobLog(opts.dataDir, opts.database);
  // Retention stays per process with a database too: its deletes on shared tables are idempotent
  // (a second run in the hour finds nothing).
  const history = retention({ wallet, ledger, jobs, log: log.child("retention") }, opts.retention);
  // Holds being served right now; anything else active and old was orphaned by an error.
  const live = new Set<string>();
  if (opts.database) {
    cluster = await joinCluster({
      database: opts.database,
      routing,
      log: log.child("cluster"),
      beatMs: opts.clusterBeatMs,
      liveHolds: () => live,
    });
    await oracle.start();
  }
  const staleMs = opts.staleHoldMs ?? 600_000;
  const sweepStaleHolds = async () => {
    let n = 0;
    // Holds another live process is serving are not stale, however old (it knows only its own).
    const elsewhere = cluster ? await cluster.holdsServedElsewhere() : undefined;
    for (const hold of await ledger.activeHolds()) {
      if (live.has(hold.id) || elsewhere?.has(hold.id) || Date.now() - hold.updated_at < staleMs) continue;
      if (!(await refundHold(hold, ledger, wallet, log, "stale hold refunded by the sweeper"))) continue;
      await oneShots.releaseRefunded(hold);
      n++;
    }
    if (n) log.warn("refunded stale holds", { count: n });
    return n;
  };
  const sweepEvery = opts.sweepIntervalMs ?? 60_000;
  const sweeper =
    sweepEvery > 0
      ? setInterval(() => {
          void background("stale-holds", sweepEvery, sweepStaleHolds).catch(() => undefined);
          void background("l402-prune", sweepEvery, () => paywall.l402.pruneUnpaid()).catch(() => undefined);
        }, sweepEvery)
      : undefined;
  sweeper?.unref();
  const accounts = new AccountPayments(
    accountStore,
    ledger,
    wallet,
    log,
    opts.tierDiscounts,
    opts.freeTier ?? DEFAULT_FREE_TIER,
  );
  const accountSignups = new SignupLimiter(opts.accountSignupsPerHour ?? Number.POSITIVE_INFINITY);
  const signupPruner = setInterval(() => accountSignups.prune(), 60_000);
  signupPruner.unref();
  // Top-ups are credited once the mint says paid, whether or not their key calls anything (with a
  // database: by one process per period; each credit is once per quote anyway).
  const topupEvery = opts.topupPollMs ?? 5_000;
  const topupPoll =
    opts.topupPollMs === 0
      ? undefined
      : setInterval(
          () =>
            void background("topup-poll", topupEvery, () => accounts.creditPaidTopups()).catch(
              () => undefined,
            ),
          topupEvery,
        );
  topupPoll?.unref();
  const oneShots: OneShotRegistry = opts.database
    ? await PgOneShotStore.open(opts.database)
    : new OneShotStore(join(opts.dataDir, "payments.sqlite"));
  const bsv = opts.bsv ? new BsvPayments(opts.bsv, ledger, oneShots) : undefined;
  // BSV is offered only when a chain API is configured, whatever the list says.
  const methods = new Set((opts.paymentMethods ?? PAYMENT_METHODS).filter((m) => m !== "bsv" || bsv));
  const challengesPerMinute = opts.challengesPerMinute ?? 60;
  const paywall: Paywall = {
    methods,
    l402: new L402Payments(
      await l402RootKey(opts.dataDir, opts.database),
      wallet,
      ledger,
      oneShots,
      opts.l402TtlSeconds,
    ),
    bsv,
    bsvAddress: opts.bsv?.address,
    wallet,
    challenges: new RateLimiter(challengesPerMinute, 60_000),
    challengesPerMinute,
    log: log.child("paywall"),
  };
  const broadcasts = await openBroadcastStore(opts.dataDir, opts.database);
  const market = await Market.open(
    opts.dataDir,
    {
      ledger,
      accounts,
      cashu: payments,
      wallet,
      oracle,
      log: log.child("market"),
      database: opts.database,
      ...(methods.has("l402") ? { l402: paywall.l402 } : {}),
    },
    opts.market,
  );
  market.start(cluster ? background : undefined);

  const deps = {
    dispatcher: routing.dispatcher,
    payments,
    accounts,
    prices,
    oracle,
    providerSharePct: share,
    paywall,
    log,
    jobs,
    live,
    aliases: opts.modelAliases ?? new ModelAliases(),
    onSettled: (jobId: string, tokens: number, providerMsat: number) => {
      routing.jobComplete(jobId, {
        tokens,
        earnedUsd: (providerMsat / 1e11) * (oracle.maybePricingRate() ?? 0),
      });
    },
  };
  const app = express();
  app.disable("x-powered-by");
  // First: /api/v1/… (402ai, BSVAPI) is rewritten to the /v1 route it names.
  const ownGroups = [
    chatRoutes,
    accountRoutes,
    routstrRoutes,
    payRoutes,
    marketRoutes,
    ollamaRoutes,
    responsesRoutes,
    embeddingsRoutes,
    anthropicRoutes,
    ollamaMetaRoutes,
    ollamaEmbedRoutes,
    providerApiRoutes,
    publicRoutes,
    broadcastRoutes,
    nodeRoutes,
    discoveryRoutes,
    webRoutes,
  ];
  const aliases = seedAliases(ownGroups);
  app.use(aliases.router);
  // Before the JSON parser: admin routes check their token before reading a (small) body.
  app.use(
    broadcastRouter({ store: broadcasts, adminToken: await adminTokenOf(opts.dataDir, opts.database) }),
  );
  // Before the JSON parser: the market and provider routes parse their own bodies.
  // Both check the caller's key before reading a body: deliveries are megabytes, registration is the
  // providers' own door.
  app.use(
    marketRouter({
      market,
      accounts,
      maxBodyBytes: MAX_BODY_BYTES,
      ...(methods.has("l402") ? { l402: paywall.l402 } : {}),
    }),
  );
  app.use(routing.router);
  // Before the JSON parser too: Anthropic's routes answer even a malformed body in Anthropic's shape.
  app.use(anthropicRouter(deps, MAX_BODY_BYTES));
  app.use(express.json({ limit: MAX_BODY_BYTES }));
  app.use(ollamaBodyParser(MAX_BODY_BYTES));
  app.post("/v1/chat/completions", handle(chatHandler("chat", deps)));
  app.post("/v1/completions", handle(chatHandler("completions", deps)));
  app.post("/v1/responses", handle(responsesHandler(deps)));
  app.use(ollamaRouter(deps));
  app.use(ollamaMetaRouter(deps));
  app.use(embeddingsRouter(deps));
  app.use(accountRouter({ accounts, ledger, wallet, signups: accountSignups }));
  app.use(routstrRouter({ accounts, ledger, wallet, claims: oneShots }));
  app.use(payRouter({ accounts, ledger, wallet, store: oneShots, prices, oracle, paywall }));
  app.use(providerRouter({ ledger, wallet, routing, payouts, oracle }));
  let listeningUrl: string | undefined;
  const routeGroups = () => [...ownGroups, aliases.group, ...(opts.mountedRoutes ?? [])];
  app.use(
    discoveryRouter({
      groups: routeGroups,
      baseUrl: (req) =>
        (opts.publicUrl ?? listeningUrl ?? `${req.protocol}://${req.get("host")}`).replace(/\/+$/, ""),
      model: () => routing.dispatcher.models()[0]?.model,
      mintUrl: () => wallet.trustedMints[0],
      mcpServerCard: opts.mcpServerCard,
    }),
  );
  app.use(
    publicRouter({
      dispatcher: routing.dispatcher,
      ledger,
      prices,
      oracle,
      wallet,
      providerSharePct: share,
      jobs,
      paymentMethods: [...methods],
      aliases: deps.aliases,
      defaultModel: opts.defaultModel,
    }),
  );
  app.use(webRouter({ dir: opts.webDir ?? defaultWebDir(), mints: () => wallet.trustedMints }));
  app.use(ollamaFallback(log));
  app.use((req, _res, next) =>
    next(
      // 402ai's base also names image, audio and video routes: say why they are missing here.
      /^\/(api\/)?v1\/(images|audio|video)\//.test(req.path)
        ? new ApiError(
            404,
            "not_found",
            `no route ${req.method} ${req.path}: this gateway serves text and embedding models only (no image, audio or video generation)`,
          )
        : new ApiError(404, "not_found", `no route ${req.method} ${req.path}`),
    ),
  );
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
    routing,
    attach(server) {
      detach.push(routing.attachWebSocket(server));
    },
    routeGroups,
    listening(url) {
      listeningUrl = url;
    },
    closeSockets,
    sweepStaleHolds,
    pruneUnpaidChallenges: (now?: number) => paywall.l402.pruneUnpaid(now),
    compactHistory: history.run,
    async recover() {
      // With a shared ledger the active holds at start include the ones other live processes are
      // serving: only holds nobody serves and old enough for the sweeper are refunded now; the
      // rest are left to the stale-hold sweep (which rechecks who serves them).
      const elsewhere = cluster ? await cluster.holdsServedElsewhere() : undefined;
      const orphaned = elsewhere
        ? snapshot.activeHolds.filter((h) => !elsewhere.has(h.id) && Date.now() - h.updated_at >= staleMs)
        : snapshot.activeHolds;
      // Two processes restarting at once repair one after the other: the wallet's restore credits a
      // dead process's claims, and the second must find them credited, not credit them again.
      const repair = () =>
        recoverAfterRestart(
          { ...snapshot, activeHolds: orphaned },
          ledger,
          wallet,
          log.child("recovery"),
          // Shared database: free only the credentials of holds refunded here; the others in use are
          // being served by live processes (or are left to the sweeper, which frees them the same way).
          elsewhere ? (hold) => oneShots.releaseRefunded(hold) : undefined,
        );
      const report = opts.database
        ? await serially(opts.database, "restart-recovery", repair)
        : await repair();
      await payouts.recover();
      // One process: holds are refunded by now, one-shot credentials caught mid-request may be
      // presented again. Shared: only those in use long enough with no hold at all (a crash
      // between taking the credential and holding its money); a live request has its hold.
      if (!elsewhere) await oneShots.releaseInUse();
      else if (oneShots instanceof PgOneShotStore) {
        const held = new Set((await ledger.activeHolds()).map((h) => h.account));
        for (const id of await oneShots.inUseSince(Date.now() - staleMs))
          if (!held.has(oneShotAccount(id))) await oneShots.move(id, "in_use", "paid");
      }
      await repairClaimedTopups(ledger, oneShots);
      await market.sweep();
      return report;
    },
    payouts,
    market,
    cluster,
    async close() {
      closeSockets();
      if (payoutTimer) clearInterval(payoutTimer);
      if (sweeper) clearInterval(sweeper);
      clearInterval(signupPruner);
      history.stop();
      priceFile?.close();
      if (topupPoll) clearInterval(topupPoll);
      // After the node sockets closed (their relays told the buyers' processes), before routing.
      await cluster?.close();
      await routing.close();
      payouts.close();
      oracle.stop();
      await wallet.close();
      accountStore.close();
      await oneShots.close();
      jobs.close();
      broadcasts.close();
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
  /** its routes, documented in the gateway's /openapi.json */
  routes?: RouteGroup;
}

export interface RunningGateway {
  url: string;
  gateway: Gateway;
  /** the server's whole app: the bundled mint, then the gateway */
  app: Express;
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
  const mountedRoutes = [
    ...(opts.mountedRoutes ?? []),
    ...(opts.bundledMint?.routes ? [opts.bundledMint.routes] : []),
  ];
  const gateway = await createGateway({ ...opts, mountedRoutes });
  const outer = express();
  outer.disable("x-powered-by");
  // Big enough for a cashu token of many proofs in X-Cashu (our own limit, 64 KiB, answers in JSON).
  const server = createServer({ maxHeaderSize: 128 * 1024 }, outer);
  jsonClientErrors(server);
  const mounted = opts.bundledMint?.mount(outer, server);
  // The router itself, not the sub-app: same handlers, and a router walk (test/discovery) sees them.
  outer.use(gateway.app.router);
  gateway.attach(server);
  const url = await listen(server, opts.host ?? DEFAULT_HOST, opts.port);
  gateway.listening(url);
  if (opts.bundledMint) {
    // Clients name the mint by the address they reach it at: behind a load balancer (several
    // processes, one database) that is the public URL, the same for every process.
    const mintUrl = `${(opts.publicUrl ?? url).replace(/\/+$/, "")}${opts.bundledMint.path}`;
    gateway.wallet.trust(mintUrl, true);
    // The gateway's wallet calls the bundled mint's HTTP API in-process: no socket, no loopback HTTP
    // client, and no DLEQ re-check of signatures this process just made.
    gateway.wallet.connect(mintUrl, {
      fetch: inProcessFetch(outer),
      sameProcess: true,
    });
    opts.bundledMint.listening?.(mintUrl);
  }
  await gateway.recover();
  return {
    url,
    gateway,
    app: outer,
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
