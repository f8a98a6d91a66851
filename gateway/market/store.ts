/**
 * What the market keeps (tasks, quotes, message threads, deliveries, Lightning collections) behind
 * one async interface with two implementations: `SqliteMarketStore` (market.sqlite, the embedded
 * default) and `PgMarketStore` (the `market_…` tables when several gateway processes share one
 * PostgreSQL). Each method is one atomic step, and every state change goes through the transition
 * tables of states.ts inside it, so a check and its write can never be split by another caller, in
 * this process or another. Money is not kept here: balances and escrow live in the ledger.
 *
 * `escrow` records where a task's money is on its way: none → locking (a quote was accepted, the
 * ledger lock is being made) → locked → settled (released to the worker or returned to the buyer).
 */
import { MarketConflictError, MarketNotFoundError } from "./errors.js";
import type { Actor, QuoteState, TaskAction, TaskState } from "./states.js";

export type EscrowState = "none" | "locking" | "locked" | "settled";

export interface TaskRow {
  id: string;
  buyer_id: string;
  title: string;
  description: string;
  budget_sats: number;
  state: TaskState;
  fee_sats: number;
  quote_id: string | null;
  worker_id: string | null;
  price_sats: number | null;
  escrow: EscrowState;
  deadline_at: number;
  review_ends_at: number | null;
  dispute_reason: string | null;
  created_at: number;
  updated_at: number;
  delivered_at: number | null;
  closed_at: number | null;
  /** computed: how many quotes the task received */
  quotes_count: number;
}

export interface QuoteRow {
  id: string;
  task_id: string;
  worker_id: string;
  price_sats: number;
  description: string;
  state: QuoteState;
  fee_sats: number;
  created_at: number;
  updated_at: number;
}

export interface MessageRow {
  id: number;
  quote_id: string;
  author_id: string;
  body: string;
  created_at: number;
}

export interface DeliveryRow {
  task_id: string;
  worker_id: string;
  filename: string;
  content: Buffer;
  size_bytes: number;
  sha256: string;
  notes: string | null;
  created_at: number;
}

export type CollectionState = "paying" | "paid" | "failed";

export interface CollectionRow {
  id: string;
  account_id: string;
  mint: string;
  invoice: string;
  quote: string;
  amount: number;
  fee_reserve: number;
  state: CollectionState;
  fee: number | null;
  preimage: string | null;
  error: string | null;
  created_at: number;
  updated_at: number;
}

export interface NewTask {
  id: string;
  buyerId: string;
  title: string;
  description: string;
  budgetSats: number;
  feeSats: number;
  deadlineAt: number;
}

export interface NewDelivery {
  filename: string;
  content: Buffer;
  sha256: string;
  notes: string | null;
}

/** Messages one quote thread may hold. */
export const MAX_THREAD_MESSAGES = 1000;

export interface NewQuote {
  id: string;
  workerId: string;
  priceSats: number;
  description: string;
  feeSats: number;
}

export type NewCollection = Omit<CollectionRow, "state" | "fee" | "preimage" | "error" | "updated_at">;

/** What the sweeper has to do at a given time. */
export interface DueWork {
  expire: string[];
  release: string[];
  unsettled: TaskRow[];
}

export interface MarketStore {
  // ---- reading ------------------------------------------------------------------------------
  task(id: string): Promise<TaskRow | undefined>;
  /** The task, or MarketNotFoundError. */
  mustTask(id: string): Promise<TaskRow>;
  /** Tasks in the given states, newest first. */
  listTasks(states: readonly TaskState[], limit: number, offset: number): Promise<TaskRow[]>;
  tasksOf(role: "buyer" | "worker", accountId: string, limit: number): Promise<TaskRow[]>;
  /** Sats an account has locked in escrow as a buyer right now. */
  escrowedBy(buyerId: string): Promise<number>;
  quotesOf(taskId: string): Promise<QuoteRow[]>;
  quotesBy(workerId: string, limit: number): Promise<QuoteRow[]>;
  /** A quote of that task (404 when it does not exist or belongs to another task). */
  mustQuote(taskId: string, quoteId: string): Promise<QuoteRow>;
  messages(quoteId: string): Promise<MessageRow[]>;
  delivery(taskId: string): Promise<DeliveryRow | undefined>;
  /** The delivery without its content. */
  deliveryMeta(taskId: string): Promise<Omit<DeliveryRow, "content"> | undefined>;
  /** What the sweeper has to do at `now`. Tasks whose acceptance is in flight are left alone. */
  due(now: number): Promise<DueWork>;
  /** Acceptances in flight, or interrupted by a crash between the store and the ledger. */
  locking(): Promise<TaskRow[]>;

  // ---- changing -----------------------------------------------------------------------------
  createTask(t: NewTask, now: number): Promise<TaskRow>;
  /** A worker's quote on a task that takes quotes; one quote per worker and task (change it with editQuote). */
  addQuote(taskId: string, q: NewQuote, now: number): Promise<QuoteRow>;
  /** The author changes a pending quote while the task still takes quotes. */
  editQuote(
    taskId: string,
    quoteId: string,
    authorId: string,
    patch: { priceSats?: number; description?: string },
    now: number,
  ): Promise<QuoteRow>;
  /**
   * First half of accepting a quote: exactly one caller moves the task to `accepted` (escrow
   * `locking`) with this quote's worker and price. The ledger lock follows; then finishAccept, or
   * undoAccept when the buyer cannot pay.
   */
  beginAccept(
    taskId: string,
    quoteId: string,
    buyerId: string,
    now: number,
    expectPriceSats?: number,
  ): Promise<{ task: TaskRow; quote: QuoteRow }>;
  /** The escrow is locked in the ledger: the other quotes are turned down. */
  finishAccept(taskId: string, now: number): Promise<TaskRow>;
  /** The lock failed (the buyer cannot pay): the task takes quotes again, the quote is pending again. */
  undoAccept(taskId: string, now: number): Promise<void>;
  /** The hired worker's delivery; opens the buyer's review window (none when `reviewWindowMs` is 0). */
  deliver(
    taskId: string,
    workerId: string,
    d: NewDelivery,
    reviewWindowMs: number,
    now: number,
  ): Promise<TaskRow>;
  /**
   * Any other task transition (confirm, dispute, cancel, refund, expire, auto_release, resolve_*),
   * checked and written at once. Leaving the quotable states turns down the pending quotes.
   */
  transition(
    taskId: string,
    action: TaskAction,
    actor: Actor,
    now: number,
    disputeReason?: string,
  ): Promise<TaskRow>;
  /** The ledger moved the escrow out (to the worker or back to the buyer). */
  markSettled(taskId: string, now: number): Promise<void>;
  addMessage(quoteId: string, authorId: string, body: string, now: number): Promise<MessageRow>;

  // ---- Lightning collections ----------------------------------------------------------------
  addCollection(c: NewCollection): Promise<void>;
  /** paying → paid or failed, once: true for the one caller that moved it. */
  finishCollection(
    id: string,
    state: "paid" | "failed",
    f: { fee?: number; preimage?: string | null; error?: string },
  ): Promise<boolean>;
  /** Forgets a collect that never got its money set aside. */
  dropCollection(id: string): Promise<void>;
  collection(id: string): Promise<CollectionRow | undefined>;
  collectionsOf(accountId: string, limit: number): Promise<CollectionRow[]>;
  payingCollections(): Promise<CollectionRow[]>;

  close(): Promise<void>;
}

// ---- refusals both implementations give, word for word ----------------------------------------
export const noTask = (id: string) => new MarketNotFoundError(`no task ${id}`);
export const noQuote = (taskId: string, quoteId: string) =>
  new MarketNotFoundError(`no quote ${quoteId} on task ${taskId}`);
export const alreadyQuoted = (taskId: string, quoteId: string) =>
  new MarketConflictError(
    `you already quoted this task (quote ${quoteId}); change it with PATCH /v1/market/tasks/${taskId}/quotes/${quoteId}`,
  );
export const acceptInFlight = () =>
  new MarketConflictError("a quote of this task is being accepted right now; try again");
export const threadFull = () =>
  new MarketConflictError(`this thread is full (${MAX_THREAD_MESSAGES} messages)`);

/** With `expectPriceSats`, a quote whose price changed meanwhile is refused. */
export function checkExpectedPrice(quote: QuoteRow, expectPriceSats: number | undefined): void {
  if (expectPriceSats !== undefined && expectPriceSats !== quote.price_sats)
    throw new MarketConflictError(
      `the quote's price is now ${quote.price_sats} sats, not ${expectPriceSats}: look at it again`,
    );
}
