/**
 * L402 (402ai): a paid route called without credentials answers 402 with
 * `WWW-Authenticate: L402 macaroon="…", invoice="…"`. The invoice is a mint quote of the gateway
 * wallet, so once it is paid the gateway mints the ecash and the ledger holds real money for it.
 * The macaroon (V2 binary, our own codec in macaroon.ts; root key 0600 in the data dir) carries first-party caveats
 * binding it to the invoice's payment hash, the route and an expiry; the client retries with
 * `Authorization: L402 <macaroon>:<preimage>` and sha256(preimage) must equal the payment hash.
 * The credential then pays for one served request (see oneshot.ts): a replay is refused.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import bolt11 from "bolt11";
import type { Migration, PgDatabase } from "../../src/shared/index.js";
import { Accounts, type Ledger } from "../ledger/index.js";
import { PaymentError } from "./errors.js";
import { decodeMacaroon, macaroonToBase64, mintMacaroon, verifyMacaroon } from "./macaroon.js";
import { type OneShotPayment, type OneShotRegistry, openOneShot } from "./oneshot.js";
import type { GatewayWallet } from "./wallet.js";

export const L402_TTL_SECONDS = 600;
const LOCATION = "owlrun-gateway";
const HEX32 = /^[0-9a-f]{64}$/;
/** An unpaid challenge's row outlives its macaroon by this long before it is pruned. */
const PRUNE_GRACE_S = 600;

export interface L402Challenge {
  macaroon: string;
  invoice: string;
  paymentHash: string;
  amountSat: number;
  /** the `WWW-Authenticate` header value */
  header: string;
}

export const sha256Hex = (hex: string) => createHash("sha256").update(Buffer.from(hex, "hex")).digest("hex");

/** The payment hash of a bolt11 invoice. */
export function paymentHashOf(invoice: string): string {
  const hash = bolt11.decode(invoice).tagsObject.payment_hash;
  if (!hash) throw new Error("invoice has no payment hash");
  return hash;
}

/** The 32-byte root key, made once and kept 0600 next to the other secrets. */
function loadRootKey(dataDir: string): Uint8Array {
  const path = join(dataDir, "l402-root-key");
  if (!existsSync(path)) writeFileSync(path, randomBytes(32), { mode: 0o600, flag: "wx" });
  chmodSync(path, 0o600);
  const key = readFileSync(path);
  if (key.length !== 32) throw new Error(`${path} is not a 32-byte key`);
  return new Uint8Array(key);
}

const ROOT_KEY_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: "CREATE TABLE l402_root_key (one BOOLEAN PRIMARY KEY DEFAULT true CHECK (one), key BYTEA NOT NULL)",
  },
];

/**
 * The root key every gateway process on one database signs and checks macaroons with: a
 * credential issued by one process is honoured by the others. The first process to start offers
 * its file's key (so macaroons it issued before stay valid); the others read that one back.
 */
export async function l402RootKey(dataDir: string, database?: PgDatabase): Promise<Uint8Array> {
  const own = loadRootKey(dataDir);
  if (!database) return own;
  await database.migrate("l402", ROOT_KEY_MIGRATIONS);
  await database.query("INSERT INTO l402_root_key (key) VALUES ($1) ON CONFLICT DO NOTHING", [
    Buffer.from(own),
  ]);
  const [row] = await database.query<{ key: Buffer }>("SELECT key FROM l402_root_key");
  return new Uint8Array(row!.key);
}

/** `L402 <macaroon>:<preimage>` (also the older `LSAT`) → its parts; undefined when not L402 at all. */
export function parseL402Authorization(
  header: string | undefined,
): { macaroon: string; preimage: string } | undefined {
  const m = /^(?:L402|LSAT)\s+(\S+)$/i.exec(header?.trim() ?? "");
  if (!m) return undefined;
  const at = m[1]!.lastIndexOf(":");
  if (at <= 0) throw new PaymentError("invalid_token", "L402 credential must be <macaroon>:<preimage>", 401);
  return { macaroon: m[1]!.slice(0, at), preimage: m[1]!.slice(at + 1).toLowerCase() };
}

/**
 * Mints a paid quote's ecash. A client holding the preimage has paid, but the mint may learn of the
 * payment a moment later: ask a few times before calling the invoice unpaid.
 */
export async function mintWhenPaid(
  wallet: GatewayWallet,
  mint: string,
  quote: string,
  amountSat: number,
  tries = 20,
): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (await wallet.mintPaid(mint, quote, amountSat)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

export class L402Payments {
  private readonly rootKey: Uint8Array;

  /** `rootKey`: a data dir (its own key file) or the key itself (`l402RootKey`, shared by processes). */
  constructor(
    rootKey: string | Uint8Array,
    private readonly wallet: GatewayWallet,
    private readonly ledger: Ledger,
    private readonly store: OneShotRegistry,
    private readonly ttlSeconds = L402_TTL_SECONDS,
  ) {
    this.rootKey = typeof rootKey === "string" ? loadRootKey(rootKey) : rootKey;
  }

  /** A fresh invoice for `amountSat` and a macaroon bound to it, `route` and an expiry. */
  async challenge(route: string, amountSat: number): Promise<L402Challenge> {
    const mint = this.wallet.trustedMints[0];
    if (!mint) throw new PaymentError("mint_unavailable", "the gateway has no mint to issue invoices", 503);
    const quote = await this.wallet.createMintQuote(mint, amountSat, `L402 ${route}`);
    const paymentHash = paymentHashOf(quote.request);
    await this.store.add({
      id: `l402:${paymentHash}`,
      kind: "l402",
      amount_sat: amountSat,
      route,
      state: "pending",
      mint,
      quote: quote.quote,
    });
    // Identifier as in L402 (version 0 ‖ payment hash ‖ token id), so other tooling can read it.
    const identifier = Buffer.concat([Buffer.alloc(2), Buffer.from(paymentHash, "hex"), randomBytes(32)]);
    const macaroon = macaroonToBase64(
      mintMacaroon({
        identifier,
        location: LOCATION,
        rootKey: this.rootKey,
        caveats: [
          `payment_hash = ${paymentHash}`,
          `route = ${route}`,
          `expires = ${Math.floor(Date.now() / 1000) + this.ttlSeconds}`,
        ],
      }),
    );
    return {
      macaroon,
      invoice: quote.request,
      paymentHash,
      amountSat,
      header: `L402 macaroon="${macaroon}", invoice="${quote.request}"`,
    };
  }

  /**
   * Forgets challenges nobody paid: pending rows past their macaroon's expiry (plus a grace for a
   * late payment) whose invoice the mint still calls unpaid. A paid one stays: its money is real.
   * Returns how many rows were dropped; at most `limit` are checked per call.
   */
  async pruneUnpaid(now = Date.now(), limit = 200): Promise<number> {
    let dropped = 0;
    for (const row of await this.store.stalePending(now - (this.ttlSeconds + PRUNE_GRACE_S) * 1000, limit)) {
      const state = await this.wallet.mintQuoteState(row.mint!, row.quote!).catch(() => undefined);
      if ((state === "UNPAID" || state === "UNKNOWN") && (await this.store.dropPending(row.id))) dropped++;
    }
    return dropped;
  }

  /**
   * Checks an L402 credential for `route` and takes it for one request. Bad macaroon or preimage →
   * 401; an unpaid invoice → 402 (the credential is not used up); a spent one → 401 token_spent.
   */
  async open(
    credential: { macaroon: string; preimage: string },
    route: string,
    minimumSat: number,
    memo?: string,
  ): Promise<OneShotPayment> {
    const paymentHash = this.verify(credential, route);
    const id = `l402:${paymentHash}`;
    let row = await this.store.get(id);
    if (!row) throw new PaymentError("invalid_token", "unknown L402 credential", 401);
    if (row.state === "pending") {
      // The preimage proves the invoice was paid: mint its ecash, then credit it, once (by ref).
      if (!(await mintWhenPaid(this.wallet, row.mint!, row.quote!, row.amount_sat))) {
        throw new PaymentError("payment_required", "the L402 invoice is not paid yet", 402);
      }
      await this.ledger.deposit(Accounts.user(id), row.amount_sat * 1000, row.mint!, id);
      await this.store.move(id, "pending", "paid");
      row = (await this.store.get(id))!;
    }
    return openOneShot(this.ledger, this.store, row, minimumSat, { payment_hash: paymentHash }, memo);
  }

  /** Verifies signature and caveats; returns the payment hash the credential is bound to. */
  private verify(credential: { macaroon: string; preimage: string }, route: string): string {
    const bad = (why: string) => new PaymentError("invalid_token", `invalid L402 credential: ${why}`, 401);
    if (!HEX32.test(credential.preimage)) throw bad("the preimage must be 32 bytes of hex");
    let mac;
    try {
      mac = decodeMacaroon(credential.macaroon);
    } catch {
      throw bad("the macaroon does not decode");
    }
    const preimageHash = sha256Hex(credential.preimage);
    let boundHash: string | undefined;
    const now = Math.floor(Date.now() / 1000);
    try {
      verifyMacaroon(mac, this.rootKey, (condition) => {
        const [key, value] = condition.split(" = ", 2);
        if (key === "payment_hash") {
          boundHash = value;
          return value && HEX32.test(value) && timingSafeEqual(Buffer.from(value), Buffer.from(preimageHash))
            ? null
            : "preimage does not match the payment hash";
        }
        if (key === "route") return value === route ? null : `bound to ${value}`;
        if (key === "expires") return Number(value) > now ? null : "expired";
        return `unknown caveat ${key}`;
      });
    } catch (err) {
      throw bad((err as Error).message);
    }
    if (!boundHash) throw bad("no payment hash caveat");
    return boundHash;
  }
}
