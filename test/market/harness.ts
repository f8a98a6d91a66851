/**
 * A gateway for the market suites, in process so tests can run the market's sweeper with a chosen
 * clock and read the ledger: the bundled mint on its own server (fake Lightning), the gateway
 * trusting it, accounts registered over HTTP and funded by depositing real ecash.
 */
import { join } from "node:path";
import { getEncodedToken, type Proof, type Wallet } from "@cashu/cashu-ts";
import Database from "better-sqlite3";
import { expect } from "vitest";
import { type RunningGateway, startGateway } from "../../gateway/index.js";
import { Accounts } from "../../gateway/ledger/index.js";
import type { MarketOptions } from "../../gateway/market/index.js";
import { createLightningBackend, type RunningMint, startMintServer } from "../../gateway/mint/index.js";
import { type PgDatabase, silentLogger } from "../../src/shared/index.js";
import { mintProofs, newWallet } from "../support/cashu.js";
import { tempDir } from "../support/cli-process.js";

export interface MarketNet {
  gw: RunningGateway;
  /** the gateway's data dir */
  dataDir: string;
  mint: RunningMint;
  url: string;
  /** a token of `sats` from the test's own cashu wallet */
  token(sats: number): Promise<string>;
  /** registers an rc_ account and deposits `sats` of ecash into it; returns the key */
  account(sats: number): Promise<string>;
  api(
    path: string,
    key?: string,
    body?: unknown,
    opts?: { method?: string; headers?: Record<string, string> },
  ): Promise<Res>;
  close(): Promise<void>;
}

export interface Res {
  status: number;
  body: any;
  headers: Headers;
}

export interface MarketNetOptions {
  market?: MarketOptions;
  /** make these outgoing Lightning payments fail at the fake node */
  failOutgoing?: (invoice: string) => boolean;
  fundSats?: number;
  /** the market (and whatever else the gateway keeps there) in this PostgreSQL */
  database?: PgDatabase;
}

export async function startMarketNet(opts: MarketNetOptions = {}): Promise<MarketNet> {
  const mint = await startMintServer({
    dataDir: tempDir("owlrun-market-mint-"),
    lightning: createLightningBackend("fake", { incomingDelayMs: 20, failOutgoing: opts.failOutgoing }),
    port: 0,
    log: silentLogger,
  });
  const dataDir = tempDir("owlrun-market-gw-");
  const gw = await startGateway({
    dataDir,
    trustedMints: [mint.url],
    port: 0,
    log: silentLogger,
    payoutIntervalMs: 0,
    sweepIntervalMs: 0,
    market: { sweepIntervalMs: 0, rateLimitPerMinute: 100_000, ...opts.market },
    database: opts.database,
  });
  const wallet: Wallet = await newWallet(mint.url);
  let purse: Proof[] = await mintProofs(wallet, opts.fundSats ?? 20_000);
  // One spend from the purse at a time (tests fund accounts concurrently).
  let queue: Promise<unknown> = Promise.resolve();
  const token = (sats: number): Promise<string> => {
    const next = queue.then(async () => {
      const { send, keep } = await wallet.send(sats, purse);
      purse = keep;
      return getEncodedToken({ mint: mint.url, proofs: send });
    });
    queue = next.catch(() => undefined);
    return next;
  };
  const api: MarketNet["api"] = async (path, key, body, o = {}) => {
    const res = await fetch(`${gw.url}${path}`, {
      method: o.method ?? (body === undefined ? "GET" : "POST"),
      headers: {
        "content-type": "application/json",
        ...(key ? { "x-token": key } : {}),
        ...o.headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON
    }
    return { status: res.status, body: parsed, headers: res.headers };
  };
  return {
    gw,
    dataDir,
    mint,
    url: gw.url,
    token,
    api,
    async account(sats) {
      const reg = await api("/v1/auth/register", undefined, {});
      const key = reg.body.api_key as string;
      if (sats > 0) {
        const dep = await api(
          "/v1/balance/topup",
          undefined,
          { token: await token(sats) },
          {
            headers: { authorization: `Bearer ${key}` },
          },
        );
        expect(dep.status, JSON.stringify(dep.body)).toBe(200);
      }
      return key;
    },
    async close() {
      await gw.close();
      await mint.close();
    },
  };
}

/** The gateway's books: balanced, the ecash they claim is the ecash the wallet holds, no negative claims. */
export async function expectBooksBalance(net: MarketNet): Promise<Map<string, number>> {
  const { ledger, wallet } = net.gw.gateway;
  const audit = await ledger.audit();
  expect(audit.imbalanceMsat).toBe(0);
  expect(audit.ecashMsat).toBe((await wallet.balance(net.mint.url)) * 1000);
  for (const [account, msat] of audit.balances) {
    if (!account.startsWith("asset:") && !account.startsWith("equity:"))
      expect(msat, account).toBeGreaterThanOrEqual(0);
    if (account.startsWith("hold:") || account.startsWith("payout:")) expect(msat, account).toBe(0);
  }
  return audit.balances;
}

export const balanceOf = async (net: MarketNet, key: string): Promise<number> =>
  (await net.api("/v1/market/me", key)).body.balance_sats;

export const escrowOf = (net: MarketNet, taskId: string) =>
  net.gw.gateway.ledger.balance(Accounts.escrow(taskId));

export const HOUR = 3_600_000;

/** Moves a task's deadline or review end (a clock the HTTP API cannot reach), straight in the market's file. */
export function setTaskTime(
  net: MarketNet,
  taskId: string,
  column: "deadline_at" | "review_ends_at",
  ms: number,
) {
  const db = new Database(join(net.dataDir, "market.sqlite"));
  try {
    db.pragma("busy_timeout = 10000");
    db.prepare(`UPDATE tasks SET ${column} = ? WHERE id = ?`).run(ms, taskId);
  } finally {
    db.close();
  }
}
