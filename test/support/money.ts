/**
 * Money bookkeeping for end-to-end audits: a client purse (a real cashu-ts wallet and the proofs it
 * holds, with every sat minted, sent and received counted), the gateway's books read from its data
 * dir or from the PostgreSQL database its processes share (ledger balances, the wallet's proof pool,
 * each proof's state asked of the mint over NUT-07), a seeded PRNG so a failing random run can be
 * replayed, and an SSE reader.
 */
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CheckStateEnum, type Proof, type Wallet } from "@cashu/cashu-ts";
import Database from "better-sqlite3";
import { expect } from "vitest";
import { Ledger } from "../../gateway/ledger/index.js";
import { PgDatabase } from "../../src/shared/index.js";
import { encodeToken, type StoredProof, type TokenFormat, toProof } from "../../src/shared/ecash/index.js";
import { mintProofs, newWallet, sumAmounts } from "./cashu.js";

/** mulberry32: small, fast and good enough to pick test actions; the same seed replays the run. */
export function seededRandom(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    /** an integer in [lo, hi] */
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!,
    /** picks a key of `weights` with probability proportional to its weight */
    weighted: <K extends string>(weights: Record<K, number>): K => {
      const entries = Object.entries(weights) as [K, number][];
      let r = next() * entries.reduce((s, [, w]) => s + w, 0);
      for (const [k, w] of entries) if ((r -= w) < 0) return k;
      return entries[entries.length - 1]![0];
    },
  };
}

/** The seed from `envVar` (to replay a failure) or a fresh one. */
export const seedFrom = (envVar: string) =>
  process.env[envVar] ? Number(process.env[envVar]) : Math.floor(Math.random() * 2 ** 31);

/**
 * A client's ecash: the proofs it holds, and how many sats it minted, handed to the gateway and got
 * back. Operations are serialised: two concurrent sends must never pick the same proofs.
 */
export class Purse {
  private proofs: Proof[] = [];
  private queue: Promise<unknown> = Promise.resolve();
  minted = 0;
  /** sats of tokens handed out (to the gateway) */
  sent = 0;
  /** sats of tokens received back (change, refunds, withdrawals) */
  received = 0;

  private constructor(
    readonly wallet: Wallet,
    readonly mintUrl: string,
  ) {}

  static async open(mintUrl: string): Promise<Purse> {
    return new Purse(await newWallet(mintUrl), mintUrl);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  get balance(): number {
    return sumAmounts(this.proofs);
  }

  secrets(): string[] {
    return this.proofs.map((p) => p.secret);
  }

  fund(sats: number): Promise<void> {
    return this.serial(async () => {
      this.proofs.push(...(await mintProofs(this.wallet, sats)));
      this.minted += sats;
    });
  }

  /** A token of exactly `amount` sats, counted as sent. */
  token(amount: number, format: TokenFormat = "B"): Promise<string> {
    return this.serial(async () => {
      const { send, keep } = await this.wallet.send(amount, this.proofs);
      this.proofs = keep;
      this.sent += amount;
      return encodeToken(this.mintUrl, send, format);
    });
  }

  /** Swaps a token into the purse (proving it was unspent), counted as received; returns its sats. */
  receive(token: string): Promise<number> {
    return this.serial(async () => {
      const got = await this.wallet.receive(token);
      this.proofs.push(...got);
      const sats = sumAmounts(got);
      this.received += sats;
      return sats;
    });
  }

  /** How many of the purse's proofs the mint does not report UNSPENT (must be 0). */
  async notUnspent(): Promise<number> {
    return countNotUnspent(this.wallet, this.proofs);
  }
}

async function countNotUnspent(wallet: Wallet, proofs: Proof[]): Promise<number> {
  let bad = 0;
  for (let i = 0; i < proofs.length; i += 100) {
    const states = await wallet.checkProofsStates(proofs.slice(i, i + 100));
    bad += states.filter((s) => s.state !== CheckStateEnum.UNSPENT).length;
  }
  return bad;
}

export interface GatewayBooks {
  imbalanceMsat: number;
  /** the ledger's asset: ecash the gateway should hold */
  ecashMsat: number;
  balances: Map<string, number>;
  activeHolds: number;
  /** the wallet's proofs ready to spend, and those reserved by an operation in flight */
  poolSat: number;
  reservedSat: number;
  /** pool proofs the mint does not report UNSPENT */
  notUnspent: number;
  /** proofs the wallet has marked spent that the mint still reports UNSPENT (value lost in limbo) */
  limboSat: number;
}

/** Sum of the balances of accounts whose name starts with `prefix` ("user:", "provider:", …). */
export function sumAccounts(books: GatewayBooks, prefix: string): number {
  let s = 0;
  for (const [account, msat] of books.balances) if (account.startsWith(prefix)) s += msat;
  return s;
}

/**
 * Where a gateway keeps its books: its data dir (`<data-dir>/gateway`, SQLite files) or the
 * PostgreSQL database several gateway processes share (`--database-url`).
 */
export type BooksAt = string | { databaseUrl: string };

/** The books once nothing is open: jobs a client walked away from settle just after it left. */
export async function settledGatewayBooks(at: BooksAt, mintUrl: string): Promise<GatewayBooks> {
  let books = await readGatewayBooks(at, mintUrl);
  for (let i = 0; i < 50 && books.activeHolds > 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    books = await readGatewayBooks(at, mintUrl);
  }
  return books;
}

/**
 * The ledger balanced with nothing open and no change owed, and its ecash asset exactly the
 * gateway wallet's proofs, all unspent at the mint, with nothing handed out left in limbo.
 */
export function expectBooksClosed(books: GatewayBooks, why: string): void {
  expect(books.imbalanceMsat, why).toBe(0);
  expect(books.activeHolds, why).toBe(0);
  expect(sumAccounts(books, "hold:"), why).toBe(0);
  expect(sumAccounts(books, "change:"), why).toBe(0);
  expect(books.reservedSat, why).toBe(0);
  expect(books.notUnspent, why).toBe(0);
  expect(books.ecashMsat, why).toBe(books.poolSat * 1000);
  expect(books.limboSat, why).toBe(0);
}

type PoolRow = StoredProof & { state: string };

/** The ledger's audit, its open holds and the gateway wallet's proofs, from SQLite or PostgreSQL. */
async function readStores(at: BooksAt) {
  const database = typeof at === "string" ? undefined : await PgDatabase.open(at.databaseUrl, { max: 2 });
  try {
    // With a database the ledger ignores the directory.
    const ledger = Ledger.open(typeof at === "string" ? at : tmpdir(), database);
    try {
      await ledger.ready();
      const audit = await ledger.audit();
      const activeHolds = (await ledger.activeHolds()).length;
      return { audit, activeHolds, rows: await poolRows(at, database) };
    } finally {
      await ledger.close();
    }
  } finally {
    await database?.close();
  }
}

/** Every proof of the gateway wallet: `proofs` in wallet.sqlite, or PgGatewayPool's `pool_proofs`. */
async function poolRows(at: BooksAt, database: PgDatabase | undefined): Promise<PoolRow[]> {
  if (database) {
    return database.query<PoolRow>("SELECT secret, mint, keyset_id, amount, c, dleq, state FROM pool_proofs");
  }
  const db = new Database(join(at as string, "wallet", "wallet.sqlite"), {
    readonly: true,
    fileMustExist: true,
  });
  try {
    return db.prepare("SELECT * FROM proofs").all() as PoolRow[];
  } finally {
    db.close();
  }
}

/**
 * Reads the gateway's books (the processes may be running: SQLite WAL allows readers, PostgreSQL
 * gives each statement a committed snapshot) and asks the mint about every proof of its wallet.
 */
export async function readGatewayBooks(at: BooksAt, mintUrl: string): Promise<GatewayBooks> {
  const { audit, activeHolds, rows } = await readStores(at);
  const of = (state: string) => rows.filter((r) => r.state === state);
  const checker = await newWallet(mintUrl);
  const spentHere = of("spent");
  let limboSat = 0;
  for (let i = 0; i < spentHere.length; i += 100) {
    const batch = spentHere.slice(i, i + 100);
    const states = await checker.checkProofsStates(batch.map(toProof));
    states.forEach((s, j) => {
      if (s.state === CheckStateEnum.UNSPENT) limboSat += batch[j]!.amount;
    });
  }
  return {
    imbalanceMsat: audit.imbalanceMsat,
    ecashMsat: audit.ecashMsat,
    balances: audit.balances,
    activeHolds,
    poolSat: of("available").reduce((s, p) => s + p.amount, 0),
    reservedSat: of("reserved").reduce((s, p) => s + p.amount, 0),
    notUnspent: await countNotUnspent(checker, of("available").map(toProof)),
    limboSat,
  };
}

/** Every `data:` payload of an SSE body, JSON-parsed when it is JSON. */
export async function readSse(res: Response): Promise<unknown[]> {
  const text = await res.text();
  return text
    .split("\n")
    .filter((l) => l.startsWith("data: "))
    .map((l) => {
      const payload = l.slice("data: ".length);
      try {
        return JSON.parse(payload) as unknown;
      } catch {
        return payload;
      }
    });
}
