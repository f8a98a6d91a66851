/** How market records look on the wire (schemas.ts), as seen by a given caller. */
import type { CollectionView, DeliveryMeta, MessageView, QuoteView, TaskView } from "./schemas.js";
import type { CollectionRow, DeliveryRow, MessageRow, QuoteRow, TaskRow } from "./store.js";

const iso = (ms: number) => new Date(ms).toISOString();
const isoOrNull = (ms: number | null) => (ms === null ? null : iso(ms));

function escrowOf(t: TaskRow): TaskView["escrow"] {
  if (t.escrow !== "settled") return t.escrow;
  return t.state === "paid" ? "released" : "refunded";
}

export function taskView(
  t: TaskRow,
  extra: { role?: TaskView["role"]; quotes?: QuoteView[]; delivery?: DeliveryMeta | null } = {},
): TaskView {
  return {
    id: t.id,
    title: t.title,
    description: t.description,
    budget_sats: t.budget_sats,
    state: t.state,
    deadline_at: iso(t.deadline_at),
    created_at: iso(t.created_at),
    updated_at: iso(t.updated_at),
    quotes_count: t.quotes_count,
    accepted_quote_id: t.quote_id,
    price_sats: t.price_sats,
    escrow: escrowOf(t),
    escrow_sats: t.escrow === "locking" || t.escrow === "locked" ? (t.price_sats ?? 0) : 0,
    delivered_at: isoOrNull(t.delivered_at),
    review_ends_at: isoOrNull(t.review_ends_at),
    dispute_reason: t.dispute_reason,
    role: extra.role ?? null,
    ...(extra.quotes ? { quotes: extra.quotes } : {}),
    ...(extra.delivery !== undefined ? { delivery: extra.delivery } : {}),
  };
}

export const quoteView = (q: QuoteRow, viewer?: string): QuoteView => ({
  id: q.id,
  task_id: q.task_id,
  price_sats: q.price_sats,
  description: q.description,
  state: q.state,
  mine: viewer !== undefined && viewer === q.worker_id,
  created_at: iso(q.created_at),
  updated_at: iso(q.updated_at),
});

export const messageView = (m: MessageRow, buyerId: string): MessageView => ({
  id: m.id,
  quote_id: m.quote_id,
  from: m.author_id === buyerId ? "buyer" : "worker",
  body: m.body,
  created_at: iso(m.created_at),
});

export const deliveryMeta = (d: Omit<DeliveryRow, "content">): DeliveryMeta => ({
  task_id: d.task_id,
  filename: d.filename,
  size_bytes: d.size_bytes,
  sha256: d.sha256,
  notes: d.notes,
  delivered_at: iso(d.created_at),
});

export const collectionView = (c: CollectionRow): CollectionView => ({
  id: c.id,
  state: c.state,
  amount_sats: c.amount,
  fee_sats: c.fee,
  preimage: c.preimage,
  error: c.error,
  created_at: iso(c.created_at),
});
