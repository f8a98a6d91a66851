/**
 * `createGateway`: opens the gateway's stores (SQLite files in the data dir, or the shared
 * PostgreSQL), joins the cluster when there is one, starts the periodic work and assembles the app.
 */
import { join } from "node:path";
import { createLogger, type Logger, privateDir } from "../src/shared/index.js";
import { openBroadcastStore } from "./broadcasts/index.js";
import { openJobLog } from "./api/joblog.js";
import { earningsOf } from "./api/providers.js";
import { PAYMENT_METHODS, type Paywall } from "./api/paywall.js";
import { DEFAULT_PROVIDER_SHARE_PCT, Ledger, MIN_PROVIDER_SHARE_PCT } from "./ledger/index.js";
import { Market } from "./market/index.js";
import { Oracle, PgOracleStore } from "./oracle/index.js";
import { AccountPayments, DEFAULT_FREE_TIER } from "./payments/account-payments.js";
import { openAccountStore } from "./payments/accounts-pg.js";
import { BsvPayments } from "./payments/bsv.js";
import { L402Payments, l402RootKey } from "./payments/l402.js";
import { type OneShotRegistry, OneShotStore } from "./payments/oneshot.js";
import { PgOneShotStore } from "./payments/oneshot-pg.js";
import { RateLimiter } from "./payments/ratelimit.js";
import { ProviderPayouts } from "./payments/payouts.js";
import { openPayoutStore } from "./payments/payout-store.js";
import { PriceTable } from "./payments/pricing.js";
import { watchedPriceTable } from "./payments/price-file.js";
import { GatewayWallet } from "./payments/wallet.js";
import { takeRecoverySnapshot } from "./payments/recovery.js";
import { CashuPayments } from "./payments/xcashu.js";
import {
  type AckInfo,
  createRouting,
  parseUpstreams,
  readUpstreamsFile,
  openRoutingStore,
  SignupLimiter,
  UpstreamConfigError,
  upstreamPriceFloors,
} from "./routing/index.js";
import { retention } from "./retention.js";
import { type Cluster, joinCluster } from "./cluster/index.js";
import { assembleApp } from "./app.js";
import { recoverAfterStart, staleHoldSweep } from "./holds.js";
import type { Gateway, GatewayOptions } from "./options.js";
import { type Background, startTimers } from "./timers.js";

/**
 * The upstream providers and the price table, read first: a bad upstreams or price file stops the
 * start before anything is opened.
 */
function loadPricing(opts: GatewayOptions, log: Logger) {
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
  return { upstreams, priceFile, prices };
}

export async function createGateway(opts: GatewayOptions): Promise<Gateway> {
  const log = opts.log ?? createLogger("gateway");
  const share = opts.providerSharePct ?? DEFAULT_PROVIDER_SHARE_PCT;
  if (share < MIN_PROVIDER_SHARE_PCT || share > 100)
    throw new Error(`provider share must be ${MIN_PROVIDER_SHARE_PCT}..100`);
  privateDir(opts.dataDir);
  const { upstreams, priceFile, prices } = loadPricing(opts, log);

  // Several processes on one database: background work runs in one of them per period.
  let cluster: Cluster | undefined;
  const background: Background = (name, periodMs, fn) => (cluster ? cluster.once(name, periodMs, fn) : fn());

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
  const accounts = new AccountPayments(
    accountStore,
    ledger,
    wallet,
    log,
    opts.tierDiscounts,
    opts.freeTier ?? DEFAULT_FREE_TIER,
  );
  const accountSignups = new SignupLimiter(opts.accountSignupsPerHour ?? Number.POSITIVE_INFINITY);
  const oneShots: OneShotRegistry = opts.database
    ? await PgOneShotStore.open(opts.database)
    : new OneShotStore(join(opts.dataDir, "payments.sqlite"));
  const holds = { ledger, wallet, oneShots, live, cluster, staleMs: opts.staleHoldMs ?? 600_000, log };
  const sweepStaleHolds = staleHoldSweep(holds);
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
  const stopTimers = startTimers(opts, background, {
    payouts: () => payouts.runOnce(),
    sweepStaleHolds,
    pruneUnpaidChallenges: () => paywall.l402.pruneUnpaid(),
    creditPaidTopups: () => accounts.creditPaidTopups(),
    pruneSignups: () => accountSignups.prune(),
  });
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

  const { app, routeGroups, listening } = await assembleApp({
    opts,
    log,
    ledger,
    wallet,
    routing,
    payments,
    accounts,
    accountSignups,
    prices,
    oracle,
    providerSharePct: share,
    paywall,
    methods,
    jobs,
    live,
    oneShots,
    payouts,
    market,
    broadcasts,
  });

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
    listening,
    closeSockets,
    sweepStaleHolds,
    pruneUnpaidChallenges: (now?: number) => paywall.l402.pruneUnpaid(now),
    compactHistory: history.run,
    recover: () => recoverAfterStart({ ...holds, snapshot, database: opts.database, payouts, market }),
    payouts,
    market,
    cluster,
    async close() {
      closeSockets();
      stopTimers();
      history.stop();
      priceFile?.close();
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
