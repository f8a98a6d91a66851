/**
 * What the client reads from the gateway's market routes (/v1/market/…). Tolerant like the rest of
 * the client: unknown fields are dropped and states are plain strings, so a newer gateway does not
 * break an older MCP server. The MCP market tools use these as their output schemas.
 */
import * as z from "zod";

const When = z.string().describe("ISO 8601 time");

export const MarketQuoteSchema = z.object({
  id: z.string(),
  task_id: z.string(),
  price_sats: z.number().int(),
  description: z.string(),
  state: z.string().describe("pending, accepted or rejected"),
  mine: z.boolean().describe("you wrote this quote"),
  created_at: When,
  updated_at: When,
});
export type MarketQuote = z.infer<typeof MarketQuoteSchema>;

export const MarketDeliveryMetaSchema = z.object({
  task_id: z.string(),
  filename: z.string(),
  size_bytes: z.number().int(),
  sha256: z.string().describe("hex SHA-256 of the delivered bytes"),
  notes: z.string().nullable(),
  delivered_at: When,
});

export const MarketDeliverySchema = MarketDeliveryMetaSchema.extend({ content_base64: z.string() });
export type MarketDelivery = z.infer<typeof MarketDeliverySchema>;

export const MarketTaskSchema = z.object({
  id: z.string(),
  title: z.string(),
  description: z.string(),
  budget_sats: z.number().int(),
  state: z.string().describe("open, quoted, accepted, delivered, disputed, paid, cancelled or expired"),
  deadline_at: When,
  created_at: When,
  quotes_count: z.number().int(),
  accepted_quote_id: z.string().nullable(),
  price_sats: z.number().int().nullable().describe("the accepted quote's price"),
  escrow: z.string().describe("none, locking, locked, released or refunded"),
  escrow_sats: z.number().int().describe("sats locked in escrow now"),
  delivered_at: When.nullable(),
  review_ends_at: When.nullable().describe(
    "after this the escrow goes to the worker unless the buyer disputes",
  ),
  dispute_reason: z.string().nullable(),
  role: z.string().nullable().describe("your part: buyer, worker, quoter, or null"),
  quotes: z
    .array(MarketQuoteSchema)
    .optional()
    .describe("all quotes if you are the buyer; yours if you quoted"),
  delivery: MarketDeliveryMetaSchema.nullable().optional(),
});
export type MarketTask = z.infer<typeof MarketTaskSchema>;

const FeeFields = {
  fee_sats: z.number().int().describe("what the request cost"),
  paid_with: z.string().describe("balance, x-cashu or free"),
};
export const MarketCreatedTaskSchema = MarketTaskSchema.extend(FeeFields);
export const MarketCreatedQuoteSchema = MarketQuoteSchema.extend(FeeFields);

export const MarketTaskListSchema = z.object({ tasks: z.array(MarketTaskSchema) });

export const MarketMessageSchema = z.object({
  id: z.number().int(),
  quote_id: z.string(),
  from: z.string().describe("buyer or worker"),
  body: z.string(),
  created_at: When,
});
export type MarketMessage = z.infer<typeof MarketMessageSchema>;
export const MarketMessagesSchema = z.object({ messages: z.array(MarketMessageSchema) });

export const MarketCollectionSchema = z.object({
  id: z.string(),
  state: z.string().describe("paying, paid or failed"),
  amount_sats: z.number().int(),
  fee_sats: z.number().int().nullable(),
  preimage: z.string().nullable(),
  created_at: When,
});
export const MarketCollectSchema = MarketCollectionSchema.extend({ balance_sats: z.number().int() });
export type MarketCollect = z.infer<typeof MarketCollectSchema>;

export const MarketMeSchema = z.object({
  account_id: z.string(),
  balance_sats: z.number().int().describe("your gateway account's balance (spendable and collectable)"),
  escrowed_sats: z.number().int().describe("locked in escrow for tasks you bought"),
  tasks: z.array(MarketTaskSchema).describe("tasks you posted"),
  work: z.array(MarketTaskSchema).describe("tasks you were hired for"),
  quotes: z.array(MarketQuoteSchema).describe("quotes you wrote"),
  collections: z.array(MarketCollectionSchema),
});
export type MarketMe = z.infer<typeof MarketMeSchema>;

export interface MarketTaskRequest {
  title: string;
  description?: string;
  budget_sats: number;
  deadline_hours?: number;
}

export interface MarketQuoteRequest {
  price_sats?: number;
  description?: string;
}

export interface MarketDeliverRequest {
  filename: string;
  content_base64: string;
  notes?: string;
}
