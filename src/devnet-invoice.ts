/**
 * `owlrun-mcp devnet invoice <sats>`: a bolt11 invoice from a second fake Lightning node (not the
 * devnet mint's), so the devnet's fake backend pays it as an external invoice: what a devnet user
 * hands to `withdraw` to try it (the mint's own invoices count as already paid).
 */
import { createHash, randomBytes } from "node:crypto";
import bolt11 from "bolt11";
import { ConfigError } from "./shared/index.js";

const USER_NODE_KEY = createHash("sha256").update("owlrun devnet user's fake node").digest("hex");
const MAINNET = { bech32: "bc", pubKeyHash: 0x00, scriptHash: 0x05, validWitnessVersions: [0, 1] };

export function devnetInvoice(sats: number, description = "devnet withdraw test"): string {
  if (!Number.isInteger(sats) || sats <= 0)
    throw new ConfigError("devnet invoice <sats>: a whole number above 0");
  const encoded = bolt11.encode({
    network: MAINNET,
    satoshis: sats,
    timestamp: Math.floor(Date.now() / 1000),
    tags: [
      { tagName: "payment_hash", data: randomBytes(32).toString("hex") },
      { tagName: "payment_secret", data: randomBytes(32).toString("hex") },
      { tagName: "description", data: description },
      { tagName: "expire_time", data: 3600 },
    ],
  });
  return bolt11.sign(encoded, USER_NODE_KEY).paymentRequest!;
}
