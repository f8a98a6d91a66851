/**
 * BSVAPI-style payment: a 402 advertises `x-bsv-payment-satoshis-required`, the client pays that
 * many BSV satoshis to the gateway's address and retries with `x-bsv-payment: <txid>`. The
 * transaction is checked on chain through a pluggable verifier (one HTTP implementation for a
 * WhatsOnChain-style API); each txid pays for one served request (see oneshot.ts), so a txid can
 * never be replayed. Disabled unless a chain API and an address are configured.
 *
 * BSV is not bitcoin: the price in BSV satoshis is the price in sats times `bsvPerSat` (a fixed,
 * configured exchange ratio), and the ledger books the payment as the asset `asset:bsv:<address>`
 * at its value in msats.
 */
import * as z from "zod";
import { type Ledger } from "../ledger/index.js";
import { PaymentError } from "./errors.js";
import { oneShotAccount, type OneShotPayment, type OneShotRegistry, openOneShot } from "./oneshot.js";

/** What the gateway needs to know about a transaction: how much it paid to an address. */
export interface BsvVerifier {
  /** satoshis the transaction pays to `address`; null when the chain does not know the txid */
  paidTo(txid: string, address: string): Promise<number | null>;
}

export interface BsvOptions {
  /** base URL of a WhatsOnChain-style API, e.g. https://api.whatsonchain.com/v1/bsv/main */
  chainApiUrl: string;
  /** the gateway's receiving address */
  address: string;
  /** BSV satoshis per bitcoin sat (default 1) */
  bsvPerSat?: number;
  /** replaces the HTTP verifier (another chain API) */
  verifier?: BsvVerifier;
}

export const TXID = /^[0-9a-f]{64}$/;

/** WhatsOnChain `GET /tx/hash/{txid}`: the fields we read. */
export const WocTransactionSchema = z.object({
  txid: z.string(),
  vout: z.array(
    z.object({
      value: z.number().nonnegative(),
      n: z.number().int(),
      scriptPubKey: z.looseObject({ addresses: z.array(z.string()).optional() }),
    }),
  ),
});

export class WhatsOnChainVerifier implements BsvVerifier {
  constructor(
    private readonly baseUrl: string,
    private readonly timeoutMs = 10_000,
  ) {}

  async paidTo(txid: string, address: string): Promise<number | null> {
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl.replace(/\/+$/, "")}/tx/hash/${txid}`, {
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw new PaymentError("mint_unavailable", `chain API unreachable: ${(err as Error).message}`, 503);
    }
    if (res.status === 404) return null;
    if (!res.ok) throw new PaymentError("mint_unavailable", `chain API answered HTTP ${res.status}`, 503);
    const tx = WocTransactionSchema.safeParse(await res.json().catch(() => null));
    if (!tx.success || tx.data.txid !== txid)
      throw new PaymentError("mint_unavailable", "chain API answered an unexpected shape", 503);
    // Values are BSV with 8 decimals: round to whole satoshis.
    return tx.data.vout
      .filter((o) => o.scriptPubKey.addresses?.includes(address))
      .reduce((s, o) => s + Math.round(o.value * 1e8), 0);
  }
}

export class BsvPayments {
  private readonly verifier: BsvVerifier;
  readonly bsvPerSat: number;

  constructor(
    private readonly opts: BsvOptions,
    private readonly ledger: Ledger,
    private readonly store: OneShotRegistry,
  ) {
    this.verifier = opts.verifier ?? new WhatsOnChainVerifier(opts.chainApiUrl);
    this.bsvPerSat = opts.bsvPerSat ?? 1;
  }

  /** BSV satoshis asked for a price in sats. */
  required(sats: number): number {
    return Math.ceil(sats * this.bsvPerSat);
  }

  /** Checks the txid on chain (first use) and takes it for one request. */
  async open(
    txidHeader: string,
    route: string,
    minimumSat: number,
    memo?: string,
    priceSat?: number,
  ): Promise<OneShotPayment> {
    const txid = txidHeader.trim().toLowerCase();
    if (!TXID.test(txid))
      throw new PaymentError("invalid_token", "x-bsv-payment must be a transaction id (64 hex)", 401);
    const id = `bsv:${txid}`;
    let row = await this.store.get(id);
    if (!row) {
      const paid = await this.verifier.paidTo(txid, this.opts.address);
      if (paid === null)
        throw new PaymentError("payment_required", `transaction ${txid} is not on chain`, 402);
      const sats = Math.floor(paid / this.bsvPerSat);
      if (sats <= 0)
        throw new PaymentError(
          "invalid_token",
          `transaction ${txid} pays nothing to ${this.opts.address}`,
          401,
        );
      // First writer wins (the txid is the primary key).
      await this.store.add({
        id,
        kind: "bsv",
        amount_sat: sats,
        route,
        state: "paid",
        mint: null,
        quote: null,
      });
      row = (await this.store.get(id))!;
    }
    // Idempotent by txid: a crash between the two writes is repaired by the next attempt.
    await this.ledger.transfer("deposit", id, [
      { from: bsvAsset(this.opts.address), to: oneShotAccount(id), msat: row.amount_sat * 1000 },
    ]);
    const satoshisPaid = this.required(row.amount_sat);
    return openOneShot(this.ledger, this.store, row, minimumSat, { txid, satoshisPaid }, memo, priceSat);
  }
}

/** The ledger asset for BSV received at an address. */
export const bsvAsset = (address: string) => `asset:bsv:${address}`;
