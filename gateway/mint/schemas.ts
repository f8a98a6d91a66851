/**
 * Wire shapes of the NUT endpoints, defined once: used to validate requests here and, later, to
 * describe the mint in OpenAPI. Unknown fields are stripped, sizes are bounded.
 */
import * as z from "zod";

export const MAX_INPUTS = 1000;
export const MAX_OUTPUTS = 1000;
/** cashu-ts restores in batches of 300; leave room. */
export const MAX_RESTORE_OUTPUTS = 1000;
export const MAX_SECRET_LENGTH = 1024;

export const Hex = z.string().regex(/^[0-9a-fA-F]*$/, "must be hex");
export const PointHex = z
  .string()
  .regex(/^0[23][0-9a-fA-F]{64}$/, "must be a 33-byte compressed secp256k1 point in hex")
  .transform((s) => s.toLowerCase());
export const KeysetId = z
  .string()
  .regex(/^(00[0-9a-fA-F]{14}|01[0-9a-fA-F]{64})$/, "must be a v1 or v2 keyset id")
  .transform((s) => s.toLowerCase());
export const Amount = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
export const Unit = z.string().min(1).max(16);
export const QuoteId = z.string().min(1).max(128);

export const Proof = z.object({
  amount: Amount,
  id: KeysetId,
  secret: z.string().min(1).max(MAX_SECRET_LENGTH),
  C: PointHex,
  witness: z.string().max(16_384).optional(),
});
export type Proof = z.infer<typeof Proof>;

export const BlindedMessage = z.object({
  amount: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  id: KeysetId,
  B_: PointHex,
});
export type BlindedMessage = z.infer<typeof BlindedMessage>;

export const BlindSignature = z.object({
  amount: z.number().int(),
  id: z.string(),
  C_: z.string(),
  dleq: z.object({ e: z.string(), s: z.string() }),
});
export type BlindSignature = z.infer<typeof BlindSignature>;

const inputs = z.array(Proof).min(1).max(MAX_INPUTS);
const outputs = z.array(BlindedMessage).max(MAX_OUTPUTS);

export const SwapRequest = z.object({ inputs, outputs: outputs.min(1) });
export const MintQuoteRequest = z.object({
  amount: Amount,
  unit: Unit,
  description: z.string().max(639).optional(),
  pubkey: PointHex.optional(),
});
export const MintRequest = z.object({
  quote: QuoteId,
  outputs: outputs.min(1),
  signature: Hex.max(256).optional(),
});
export const MeltQuoteRequest = z.object({
  request: z.string().min(1).max(4096),
  unit: Unit,
  options: z
    .object({ amountless: z.object({ amount_msat: z.number().int().positive() }).optional() })
    .optional(),
});
export const MeltRequest = z.object({
  quote: QuoteId,
  inputs,
  outputs: outputs.optional(),
  prefer_async: z.boolean().optional(),
});
export const CheckStateRequest = z.object({
  Ys: z.array(PointHex).min(1).max(MAX_INPUTS),
});
export const RestoreRequest = z.object({
  outputs: z.array(BlindedMessage).min(1).max(MAX_RESTORE_OUTPUTS),
});

export type SwapRequest = z.infer<typeof SwapRequest>;
export type MintQuoteRequest = z.infer<typeof MintQuoteRequest>;
export type MintRequest = z.infer<typeof MintRequest>;
export type MeltQuoteRequest = z.infer<typeof MeltQuoteRequest>;
export type MeltRequest = z.infer<typeof MeltRequest>;

export const MintQuoteState = z.enum(["UNPAID", "PAID", "ISSUED"]);
export const MeltQuoteState = z.enum(["UNPAID", "PENDING", "PAID"]);
export const ProofState = z.enum(["UNSPENT", "PENDING", "SPENT"]);
export type MintQuoteState = z.infer<typeof MintQuoteState>;
export type MeltQuoteState = z.infer<typeof MeltQuoteState>;
export type ProofState = z.infer<typeof ProofState>;

export const MintQuoteResponse = z.object({
  quote: z.string(),
  request: z.string(),
  amount: z.number().int(),
  unit: z.string(),
  state: MintQuoteState,
  expiry: z.number().int().nullable(),
  pubkey: z.string().optional(),
});
export type MintQuoteResponse = z.infer<typeof MintQuoteResponse>;

export const MeltQuoteResponse = z.object({
  quote: z.string(),
  request: z.string(),
  amount: z.number().int(),
  unit: z.string(),
  fee_reserve: z.number().int(),
  state: MeltQuoteState,
  expiry: z.number().int().nullable(),
  payment_preimage: z.string().nullable(),
  change: z.array(BlindSignature).optional(),
});
export type MeltQuoteResponse = z.infer<typeof MeltQuoteResponse>;

export const ProofStateEntry = z.object({ Y: z.string(), state: ProofState, witness: z.string().nullable() });
export type ProofStateEntry = z.infer<typeof ProofStateEntry>;

// ---- other responses (documented in OpenAPI) ----
export const MintInfoResponse = z.looseObject({
  name: z.string(),
  version: z.string(),
  nuts: z.record(z.string(), z.unknown()),
});
const KeysetKeys = z.looseObject({
  id: z.string(),
  unit: z.string(),
  keys: z.record(z.string(), z.string()),
});
export const KeysResponse = z.object({ keysets: z.array(KeysetKeys) });
export const KeysetsResponse = z.object({
  keysets: z.array(
    z.looseObject({ id: z.string(), unit: z.string(), active: z.boolean(), input_fee_ppk: z.number().int() }),
  ),
});
export const SignaturesResponse = z.object({ signatures: z.array(BlindSignature) });
export const CheckStateResponse = z.object({ states: z.array(ProofStateEntry) });
export const RestoreResponse = z.object({
  outputs: z.array(z.object({ amount: z.number().int(), id: z.string(), B_: z.string() })),
  signatures: z.array(BlindSignature),
});
/** NUT-00 error body. */
export const MintErrorBody = z
  .object({ detail: z.string(), code: z.number().int() })
  .meta({ id: "MintError" });
