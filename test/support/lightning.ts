/**
 * The Lightning network at the edge of the tests: a payer's node. It is the fake backend itself
 * (the bundled mint's invoices are signed by the same fake node key), so paying one of them
 * returns its true preimage, as a real payment would reveal it.
 */
import bolt11 from "bolt11";
import { createFakeLightning } from "../../gateway/mint/lightning/index.js";

export async function payInvoice(invoice: string): Promise<string> {
  const amountMsat = Number(bolt11.decode(invoice).millisatoshis ?? 0);
  const r = await createFakeLightning().payInvoice(invoice, amountMsat, 10);
  if (r.state !== "PAID" || !r.preimage) throw new Error(`payment failed: ${r.reason ?? r.state}`);
  return r.preimage;
}
