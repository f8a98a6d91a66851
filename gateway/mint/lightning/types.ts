/**
 * What the mint needs from a Lightning node. Amounts are whole sats at this boundary except where
 * named msat. Every backend must be safe to call again after a crash: the mint persists a melt as
 * PENDING before `payInvoice`, and on restart asks `paymentStatus` instead of paying twice.
 */
export interface CreatedInvoice {
  /** bolt11 string; wallets read its amount, so it must be a real, signed invoice. */
  request: string;
  /** hex sha256 of the preimage: the id the mint uses to ask about this invoice later. */
  paymentHash: string;
  /** unix seconds */
  expiresAt: number;
}

export type IncomingState = "UNPAID" | "PAID" | "EXPIRED";
export type OutgoingState = "PENDING" | "PAID" | "FAILED" | "UNKNOWN";

export interface OutgoingResult {
  state: OutgoingState;
  /** hex, present when PAID */
  preimage?: string;
  /** routing fee actually paid, whole sats (rounded up) */
  feeSat?: number;
  /** backend's id for the payment, if it has one (phoenixd paymentId) */
  paymentId?: string;
  /** human-readable reason when FAILED */
  reason?: string;
}

export interface LightningBackend {
  readonly name: string;
  /**
   * True when the backend pays invoices whatever their expiry. Only the fake node does, like the
   * reference mints' fake wallets: wallet test suites pay fixed invoices that expired long ago.
   */
  readonly paysExpiredInvoices?: boolean;
  createInvoice(
    amountSat: number,
    description: string | undefined,
    expirySeconds: number,
  ): Promise<CreatedInvoice>;
  /** State of an invoice this backend created; gets the bolt11 too so stateless backends can answer after a restart. */
  invoiceState(invoice: { paymentHash: string; request: string }): Promise<IncomingState>;
  /** Fee reserve in sats the mint asks for when melting to this invoice amount. */
  feeReserveSat(amountMsat: number): number;
  /** Pays a bolt11 invoice; must not throw for a routing failure (return FAILED instead). */
  payInvoice(request: string, amountMsat: number, maxFeeSat: number): Promise<OutgoingResult>;
  /** State of an earlier payInvoice, by payment hash: used to resolve PENDING melts after a crash. */
  paymentState(paymentHash: string): Promise<OutgoingResult>;
  /**
   * The preimage of an invoice this backend created, when it knows it. A melt to the mint's own
   * invoice settles internally and hands the payer this preimage, as a Lightning payment would
   * (L402 clients prove payment with it).
   */
  invoicePreimage?(invoice: { paymentHash: string; request: string }): Promise<string | undefined>;
  /** Push notification of incoming payments, where the backend can; the mint also polls. */
  onInvoicePaid?(listener: (paymentHash: string) => void): void;
  close(): Promise<void>;
}

/** What a real node's melt sets aside for routing fees: `ppm` of the amount, at least `minSat`. */
export function routingFeeReserveSat(
  amountMsat: number,
  opts: { feeReservePpm?: number; feeReserveMinSat?: number },
): number {
  const ppm = opts.feeReservePpm ?? 10_000;
  return Math.max(opts.feeReserveMinSat ?? 4, Math.ceil((amountMsat * ppm) / 1e9));
}
