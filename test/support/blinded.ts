/** Raw NUT-00 outputs built with cashu-ts's wallet-side helpers, for tests that call the mint by hand. */
import { randomBytes } from "node:crypto";
import { blindMessage, type Proof } from "@cashu/cashu-ts";
import bolt11 from "bolt11";

export interface RawOutput {
  amount: number;
  id: string;
  B_: string;
}

/** Fresh random outputs for `amount` (one per power of two). */
export function randomOutputs(amount: number, keysetId: string): RawOutput[] {
  const outs: RawOutput[] = [];
  for (let bit = 0; amount > 0; bit++) {
    const v = 2 ** bit;
    if (amount & v) {
      const { B_ } = blindMessage(new TextEncoder().encode(randomBytes(32).toString("hex")));
      outs.push({ amount: v, id: keysetId, B_: B_.toHex(true) });
      amount -= v;
    }
  }
  return outs;
}

/** Proofs as plain JSON for a raw request body. */
export const rawProofs = (proofs: Proof[]) =>
  proofs.map((p) => ({ amount: Number(p.amount.toString()), id: p.id, secret: p.secret, C: p.C }));

export async function postJson(url: string, body: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // leave as text
  }
  return { status: res.status, body: parsed };
}

/** A signed bolt11 invoice from a Lightning node that is not the mint under test. */
export function externalInvoice(amountSat: number): string {
  const encoded = bolt11.encode({
    network: { bech32: "bc", pubKeyHash: 0x00, scriptHash: 0x05, validWitnessVersions: [0, 1] },
    satoshis: amountSat,
    timestamp: Math.floor(Date.now() / 1000),
    tags: [
      { tagName: "payment_hash", data: randomBytes(32).toString("hex") },
      { tagName: "payment_secret", data: randomBytes(32).toString("hex") },
      { tagName: "description", data: "external test invoice" },
      { tagName: "expire_time", data: 3600 },
    ],
  });
  return bolt11.sign(encoded, randomBytes(32).toString("hex")).paymentRequest!;
}
