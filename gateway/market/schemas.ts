/**
 * Wire shapes of the market routes (/v1/market/…), one zod schema per request and response body:
 * the routes validate with them and the OpenAPI document is generated from them. Field names follow
 * 402ai's ai-for-hire API (title, description, budget_sats, price_sats, body, filename,
 * content_base64, notes, invoice, amount_sats). Times are ISO 8601 strings.
 */
import * as z from "zod";
import { QUOTE_STATES, TASK_STATES } from "./states.js";

const MAX_SATS = 100_000_000;
const Sats = z.number().int().positive().max(MAX_SATS);
const When = z.iso.datetime();

// ---- requests ---------------------------------------------------------------------------------
export const CreateTaskRequestSchema = z.object({
  title: z.string().trim().min(1).max(200),
  description: z.string().max(20_000).default(""),
  budget_sats: Sats.describe("what the buyer means to spend; quotes may differ"),
  deadline_hours: z
    .number()
    .min(1 / 60)
    .max(24 * 90)
    .optional()
    .describe("hours from now until the task must be delivered (default 7 days)"),
});

export const ListTasksQuerySchema = z.object({
  state: z
    .enum([...TASK_STATES, "all"])
    .optional()
    .describe("one state, or all (default: tasks taking quotes, i.e. open and quoted)"),
  limit: z.coerce.number().int().min(1).max(100).default(50),
  offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
});

export const QuoteRequestSchema = z.object({
  price_sats: Sats,
  description: z.string().max(5_000).default(""),
});

export const EditQuoteRequestSchema = z
  .object({ price_sats: Sats.optional(), description: z.string().max(5_000).optional() })
  .refine((b) => b.price_sats !== undefined || b.description !== undefined, {
    message: "give price_sats or description",
  });

export const AcceptRequestSchema = z.object({
  price_sats: Sats.optional().describe("the price you agreed to: refused (409) if the quote changed since"),
});

export const MessageRequestSchema = z.object({ body: z.string().trim().min(1).max(10_000) });

export const DeliverRequestSchema = z.object({
  filename: z
    .string()
    .min(1)
    .max(255)
    .regex(/^[^/\\\0]+$/, "a file name, without a path"),
  content_base64: z.base64(),
  notes: z.string().max(5_000).optional(),
});

export const DisputeRequestSchema = z.object({ reason: z.string().trim().min(1).max(2_000) });

export const CollectRequestSchema = z.object({
  invoice: z
    .string()
    .trim()
    .min(10)
    .max(4096)
    .regex(/^(lightning:)?ln/i, "a bolt11 Lightning invoice (lnbc…)"),
  amount_sats: Sats.optional().describe("must match the invoice's amount when given"),
});

// ---- responses --------------------------------------------------------------------------------
export const QuoteViewSchema = z.object({
  id: z.string(),
  task_id: z.string(),
  price_sats: z.number().int(),
  description: z.string(),
  state: z.enum(QUOTE_STATES),
  mine: z.boolean().describe("the caller wrote this quote"),
  created_at: When,
  updated_at: When,
});

export const DeliveryMetaSchema = z.object({
  task_id: z.string(),
  filename: z.string(),
  size_bytes: z.number().int(),
  sha256: z.string().describe("hex SHA-256 of the delivered bytes"),
  notes: z.string().nullable(),
  delivered_at: When,
});

export const DeliverySchema = DeliveryMetaSchema.extend({ content_base64: z.string() });

export const TaskViewSchema = z.object({
  id: z.string(),
  title: z.string(),
  description: z.string(),
  budget_sats: z.number().int(),
  state: z.enum(TASK_STATES),
  deadline_at: When,
  created_at: When,
  updated_at: When,
  quotes_count: z.number().int(),
  accepted_quote_id: z.string().nullable(),
  price_sats: z.number().int().nullable().describe("the accepted quote's price"),
  escrow: z
    .enum(["none", "locking", "locked", "released", "refunded"])
    .describe("where the accepted price is: locked until released to the worker or refunded to the buyer"),
  escrow_sats: z.number().int().describe("sats locked in escrow right now"),
  delivered_at: When.nullable(),
  review_ends_at: When.nullable().describe("after this the escrow is released unless the buyer disputes"),
  dispute_reason: z.string().nullable(),
  role: z
    .enum(["buyer", "worker", "quoter"])
    .nullable()
    .describe("the caller's part in this task (null when anonymous or not involved)"),
  quotes: z
    .array(QuoteViewSchema)
    .optional()
    .describe("all quotes for the buyer; the caller's own quote for a worker"),
  delivery: DeliveryMetaSchema.nullable().optional().describe("shown to the buyer and the hired worker"),
});

const FeeFields = {
  fee_sats: z.number().int().describe("what this request cost"),
  paid_with: z.enum(["balance", "x-cashu", "l402", "free"]),
  change_sats: z.number().int().optional().describe("X-Cashu: what came back in X-Cashu-Change"),
};

export const CreateTaskResponseSchema = TaskViewSchema.extend(FeeFields);
export const QuoteResponseSchema = QuoteViewSchema.extend(FeeFields);
export const TaskListResponseSchema = z.object({
  tasks: z.array(TaskViewSchema),
  limit: z.number().int(),
  offset: z.number().int(),
});

export const MessageViewSchema = z.object({
  id: z.number().int(),
  quote_id: z.string(),
  from: z.enum(["buyer", "worker"]),
  body: z.string(),
  created_at: When,
});
export const MessagesResponseSchema = z.object({ messages: z.array(MessageViewSchema) });

export const CollectionViewSchema = z.object({
  id: z.string(),
  state: z.enum(["paying", "paid", "failed"]),
  amount_sats: z.number().int(),
  fee_sats: z.number().int().nullable(),
  preimage: z.string().nullable(),
  error: z.string().nullable(),
  created_at: When,
});
export const CollectResponseSchema = CollectionViewSchema.extend({ balance_sats: z.number().int() });

export const MeResponseSchema = z.object({
  account_id: z.string(),
  balance_sats: z.number().int().describe("spendable and collectable"),
  escrowed_sats: z.number().int().describe("locked in escrow for tasks you bought"),
  tasks: z.array(TaskViewSchema).describe("tasks you posted, newest first"),
  work: z.array(TaskViewSchema).describe("tasks you were hired for, newest first"),
  quotes: z.array(QuoteViewSchema).describe("quotes you wrote, newest first"),
  collections: z.array(CollectionViewSchema),
});

export const MarketInfoSchema = z.object({
  task_fee_sats: z.number().int().describe("posting a task, at today's rate"),
  task_fee_usd: z.number(),
  quote_fee_sats: z.number().int().describe("submitting a quote, at today's rate"),
  quote_fee_usd: z.number(),
  btc_usd: z.number().describe("the oracle's rate the fees are converted at"),
  default_deadline_hours: z.number(),
  review_window_hours: z
    .number()
    .nullable()
    .describe("after a delivery the buyer has this long to confirm or dispute; null: no automatic release"),
  max_delivery_bytes: z.number().int(),
  payment_methods: z.array(z.string()),
});

export type CreateTaskRequest = z.infer<typeof CreateTaskRequestSchema>;
export type QuoteRequest = z.infer<typeof QuoteRequestSchema>;
export type EditQuoteRequest = z.infer<typeof EditQuoteRequestSchema>;
export type DeliverRequest = z.infer<typeof DeliverRequestSchema>;
export type CollectRequest = z.infer<typeof CollectRequestSchema>;
export type TaskView = z.infer<typeof TaskViewSchema>;
export type QuoteView = z.infer<typeof QuoteViewSchema>;
export type MessageView = z.infer<typeof MessageViewSchema>;
export type DeliveryMeta = z.infer<typeof DeliveryMetaSchema>;
export type CollectionView = z.infer<typeof CollectionViewSchema>;
export type MarketInfo = z.infer<typeof MarketInfoSchema>;
export type ListTasksQuery = z.infer<typeof ListTasksQuerySchema>;
