/**
 * The market's records in SQLite (WAL): tasks, quotes, message threads, deliveries and Lightning
 * collections. Each public method is one atomic transaction, and every state change goes through
 * the transition tables of states.ts inside it, so a check and its write can never be split by
 * another caller. Money is not kept here: balances and escrow live in the ledger.
 *
 * `escrow` records where a task's money is on its way: none → locking (a quote was accepted, the
 * ledger lock is being made) → locked → settled (released to the worker or returned to the buyer).
 */
import { SqliteStore } from "../../src/shared/sqlite.js";
import { MarketConflictError, MarketNotFoundError } from "./errors.js";
import {
  type Actor,
  checkQuoteTransition,
  checkTaskTransition,
  FINAL_STATES,
  QUOTABLE_STATES,
  type QuoteState,
  type TaskAction,
  type TaskState,
} from "./states.js";

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

/** Messages one quote thread may hold. */
export const MAX_THREAD_MESSAGES = 1000;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS tasks (
  id TEXT PRIMARY KEY, buyer_id TEXT NOT NULL, title TEXT NOT NULL, description TEXT NOT NULL,
  budget_sats INTEGER NOT NULL, state TEXT NOT NULL, fee_sats INTEGER NOT NULL,
  quote_id TEXT, worker_id TEXT, price_sats INTEGER, escrow TEXT NOT NULL DEFAULT 'none',
  deadline_at INTEGER NOT NULL, review_ends_at INTEGER, dispute_reason TEXT,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, delivered_at INTEGER, closed_at INTEGER);
CREATE INDEX IF NOT EXISTS tasks_state ON tasks (state, created_at);
CREATE INDEX IF NOT EXISTS tasks_buyer ON tasks (buyer_id, created_at);
CREATE INDEX IF NOT EXISTS tasks_worker ON tasks (worker_id, created_at);
CREATE INDEX IF NOT EXISTS tasks_escrow ON tasks (escrow);
CREATE TABLE IF NOT EXISTS quotes (
  id TEXT PRIMARY KEY, task_id TEXT NOT NULL, worker_id TEXT NOT NULL, price_sats INTEGER NOT NULL,
  description TEXT NOT NULL, state TEXT NOT NULL, fee_sats INTEGER NOT NULL,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, UNIQUE (task_id, worker_id));
CREATE INDEX IF NOT EXISTS quotes_worker ON quotes (worker_id, created_at);
CREATE TABLE IF NOT EXISTS messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT, quote_id TEXT NOT NULL, author_id TEXT NOT NULL, body TEXT NOT NULL,
  created_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS messages_quote ON messages (quote_id, id);
CREATE TABLE IF NOT EXISTS deliveries (
  task_id TEXT PRIMARY KEY, worker_id TEXT NOT NULL, filename TEXT NOT NULL, content BLOB NOT NULL,
  size_bytes INTEGER NOT NULL, sha256 TEXT NOT NULL, notes TEXT, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS collections (
  id TEXT PRIMARY KEY, account_id TEXT NOT NULL, mint TEXT NOT NULL, invoice TEXT NOT NULL, quote TEXT NOT NULL,
  amount INTEGER NOT NULL, fee_reserve INTEGER NOT NULL, state TEXT NOT NULL, fee INTEGER, preimage TEXT,
  error TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS collections_account ON collections (account_id, created_at);
CREATE INDEX IF NOT EXISTS collections_state ON collections (state);
`;

const TASK_SELECT =
  "SELECT t.*, (SELECT COUNT(*) FROM quotes q WHERE q.task_id = t.id) AS quotes_count FROM tasks t";
const placeholders = (n: number) => Array.from({ length: n }, () => "?").join(", ");

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

export class MarketStore extends SqliteStore {
  constructor(path: string) {
    super(path, SCHEMA);
  }

  // ---- reading ------------------------------------------------------------------------------
  task(id: string): TaskRow | undefined {
    return this.db.prepare(`${TASK_SELECT} WHERE t.id = ?`).get(id) as TaskRow | undefined;
  }

  mustTask(id: string): TaskRow {
    const t = this.task(id);
    if (!t) throw new MarketNotFoundError(`no task ${id}`);
    return t;
  }

  /** Tasks in the given states, newest first. */
  listTasks(states: readonly TaskState[], limit: number, offset: number): TaskRow[] {
    return this.db
      .prepare(
        `${TASK_SELECT} WHERE t.state IN (${placeholders(states.length)}) ORDER BY t.created_at DESC, t.id LIMIT ? OFFSET ?`,
      )
      .all(...states, limit, offset) as TaskRow[];
  }

  tasksOf(role: "buyer" | "worker", accountId: string, limit: number): TaskRow[] {
    const column = role === "buyer" ? "buyer_id" : "worker_id";
    return this.db
      .prepare(`${TASK_SELECT} WHERE t.${column} = ? ORDER BY t.created_at DESC LIMIT ?`)
      .all(accountId, limit) as TaskRow[];
  }

  /** Sats an account has locked in escrow as a buyer right now. */
  escrowedBy(buyerId: string): number {
    const row = this.db
      .prepare(
        "SELECT COALESCE(SUM(price_sats), 0) AS v FROM tasks WHERE buyer_id = ? AND escrow IN ('locking', 'locked')",
      )
      .get(buyerId) as { v: number };
    return row.v;
  }

  quotesOf(taskId: string): QuoteRow[] {
    return this.db
      .prepare("SELECT * FROM quotes WHERE task_id = ? ORDER BY created_at, id")
      .all(taskId) as QuoteRow[];
  }

  quotesBy(workerId: string, limit: number): QuoteRow[] {
    return this.db
      .prepare("SELECT * FROM quotes WHERE worker_id = ? ORDER BY created_at DESC LIMIT ?")
      .all(workerId, limit) as QuoteRow[];
  }

  /** A quote of that task (404 when it does not exist or belongs to another task). */
  mustQuote(taskId: string, quoteId: string): QuoteRow {
    const q = this.db.prepare("SELECT * FROM quotes WHERE id = ? AND task_id = ?").get(quoteId, taskId) as
      QuoteRow | undefined;
    if (!q) throw new MarketNotFoundError(`no quote ${quoteId} on task ${taskId}`);
    return q;
  }

  messages(quoteId: string): MessageRow[] {
    return this.db
      .prepare("SELECT * FROM messages WHERE quote_id = ? ORDER BY id")
      .all(quoteId) as MessageRow[];
  }

  delivery(taskId: string): DeliveryRow | undefined {
    return this.db.prepare("SELECT * FROM deliveries WHERE task_id = ?").get(taskId) as
      DeliveryRow | undefined;
  }

  /** The delivery without its content. */
  deliveryMeta(taskId: string): Omit<DeliveryRow, "content"> | undefined {
    return this.db
      .prepare(
        "SELECT task_id, worker_id, filename, size_bytes, sha256, notes, created_at FROM deliveries WHERE task_id = ?",
      )
      .get(taskId) as Omit<DeliveryRow, "content"> | undefined;
  }

  /** What the sweeper has to do at `now`. Tasks whose acceptance is in flight are left alone. */
  due(now: number): { expire: string[]; release: string[]; unsettled: TaskRow[] } {
    const ids = (sql: string, ...args: unknown[]) =>
      (this.db.prepare(sql).all(...args) as { id: string }[]).map((r) => r.id);
    return {
      expire: ids(
        "SELECT id FROM tasks WHERE state IN ('open', 'quoted', 'accepted') AND escrow != 'locking' AND deadline_at <= ?",
        now,
      ),
      release: ids(
        "SELECT id FROM tasks WHERE state = 'delivered' AND review_ends_at IS NOT NULL AND review_ends_at <= ?",
        now,
      ),
      unsettled: this.db
        .prepare(
          `${TASK_SELECT} WHERE t.escrow = 'locked' AND t.state IN (${placeholders(FINAL_STATES.length)})`,
        )
        .all(...FINAL_STATES) as TaskRow[],
    };
  }

  /** Acceptances a crash interrupted between the store and the ledger. */
  locking(): TaskRow[] {
    return this.db.prepare(`${TASK_SELECT} WHERE t.escrow = 'locking'`).all() as TaskRow[];
  }

  // ---- changing -----------------------------------------------------------------------------
  createTask(t: NewTask, now: number): TaskRow {
    this.db
      .prepare(
        `INSERT INTO tasks (id, buyer_id, title, description, budget_sats, state, fee_sats, deadline_at, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, 'open', ?, ?, ?, ?)`,
      )
      .run(t.id, t.buyerId, t.title, t.description, t.budgetSats, t.feeSats, t.deadlineAt, now, now);
    return this.task(t.id)!;
  }

  /** A worker's quote on a task that takes quotes; one quote per worker and task (change it with editQuote). */
  addQuote(
    taskId: string,
    q: { id: string; workerId: string; priceSats: number; description: string; feeSats: number },
    now: number,
  ): QuoteRow {
    return this.tx(() => {
      const task = this.mustTask(taskId);
      const to = checkTaskTransition("quote", task, { account: q.workerId }, now);
      const mine = this.db
        .prepare("SELECT id FROM quotes WHERE task_id = ? AND worker_id = ?")
        .get(taskId, q.workerId) as { id: string } | undefined;
      if (mine)
        throw new MarketConflictError(
          `you already quoted this task (quote ${mine.id}); change it with PATCH /v1/market/tasks/${taskId}/quotes/${mine.id}`,
        );
      this.db
        .prepare(
          `INSERT INTO quotes (id, task_id, worker_id, price_sats, description, state, fee_sats, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?)`,
        )
        .run(q.id, taskId, q.workerId, q.priceSats, q.description, q.feeSats, now, now);
      this.setTaskState(taskId, to, now);
      return this.mustQuote(taskId, q.id);
    });
  }

  /** The author changes a pending quote while the task still takes quotes. */
  editQuote(
    taskId: string,
    quoteId: string,
    authorId: string,
    patch: { priceSats?: number; description?: string },
    now: number,
  ): QuoteRow {
    return this.tx(() => {
      const task = this.mustTask(taskId);
      const quote = this.mustQuote(taskId, quoteId);
      checkQuoteTransition("edit", quote, task, { account: authorId });
      checkTaskTransition("quote", task, { account: authorId }, now);
      this.db
        .prepare(
          "UPDATE quotes SET price_sats = COALESCE(?, price_sats), description = COALESCE(?, description), updated_at = ? WHERE id = ?",
        )
        .run(patch.priceSats ?? null, patch.description ?? null, now, quoteId);
      return this.mustQuote(taskId, quoteId);
    });
  }

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
  ): { task: TaskRow; quote: QuoteRow } {
    return this.tx(() => {
      const task = this.mustTask(taskId);
      const quote = this.mustQuote(taskId, quoteId);
      const actor = { account: buyerId };
      const to = checkTaskTransition("accept", task, actor, now);
      const quoteTo = checkQuoteTransition("accept", quote, task, actor);
      if (expectPriceSats !== undefined && expectPriceSats !== quote.price_sats)
        throw new MarketConflictError(
          `the quote's price is now ${quote.price_sats} sats, not ${expectPriceSats}: look at it again`,
        );
      this.db
        .prepare(
          "UPDATE tasks SET state = ?, quote_id = ?, worker_id = ?, price_sats = ?, escrow = 'locking', updated_at = ? WHERE id = ?",
        )
        .run(to, quote.id, quote.worker_id, quote.price_sats, now, taskId);
      this.db.prepare("UPDATE quotes SET state = ?, updated_at = ? WHERE id = ?").run(quoteTo, now, quote.id);
      return { task: this.task(taskId)!, quote: this.mustQuote(taskId, quoteId) };
    });
  }

  /** The escrow is locked in the ledger: the other quotes are turned down. */
  finishAccept(taskId: string, now: number): TaskRow {
    return this.tx(() => {
      this.db
        .prepare("UPDATE tasks SET escrow = 'locked', updated_at = ? WHERE id = ? AND escrow = 'locking'")
        .run(now, taskId);
      this.rejectPending(taskId, now);
      return this.task(taskId)!;
    });
  }

  /** The lock failed (the buyer cannot pay): the task takes quotes again, the quote is pending again. */
  undoAccept(taskId: string, now: number): void {
    this.tx(() => {
      const task = this.task(taskId);
      if (!task || task.escrow !== "locking") return;
      this.db
        .prepare(
          "UPDATE tasks SET state = 'quoted', quote_id = NULL, worker_id = NULL, price_sats = NULL, escrow = 'none', updated_at = ? WHERE id = ?",
        )
        .run(now, taskId);
      this.db
        .prepare("UPDATE quotes SET state = 'pending', updated_at = ? WHERE id = ?")
        .run(now, task.quote_id);
    });
  }

  /** The hired worker's delivery; opens the buyer's review window (none when `reviewWindowMs` is 0). */
  deliver(taskId: string, workerId: string, d: NewDelivery, reviewWindowMs: number, now: number): TaskRow {
    return this.tx(() => {
      const task = this.mustTask(taskId);
      const to = checkTaskTransition("deliver", task, { account: workerId }, now);
      this.db
        .prepare(
          `INSERT INTO deliveries (task_id, worker_id, filename, content, size_bytes, sha256, notes, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(taskId, workerId, d.filename, d.content, d.content.length, d.sha256, d.notes, now);
      this.db
        .prepare("UPDATE tasks SET delivered_at = ?, review_ends_at = ? WHERE id = ?")
        .run(now, reviewWindowMs > 0 ? now + reviewWindowMs : null, taskId);
      this.setTaskState(taskId, to, now);
      return this.task(taskId)!;
    });
  }

  /**
   * Any other task transition (confirm, dispute, cancel, refund, expire, auto_release, resolve_*),
   * checked and written at once. Leaving the quotable states turns down the pending quotes.
   */
  transition(taskId: string, action: TaskAction, actor: Actor, now: number, disputeReason?: string): TaskRow {
    return this.tx(() => {
      const task = this.mustTask(taskId);
      const to = checkTaskTransition(action, task, actor, now);
      if (task.escrow === "locking")
        throw new MarketConflictError("a quote of this task is being accepted right now; try again");
      if (disputeReason !== undefined)
        this.db.prepare("UPDATE tasks SET dispute_reason = ? WHERE id = ?").run(disputeReason, taskId);
      this.setTaskState(taskId, to, now);
      if (!QUOTABLE_STATES.includes(to)) this.rejectPending(taskId, now);
      return this.task(taskId)!;
    });
  }

  /** The ledger moved the escrow out (to the worker or back to the buyer). */
  markSettled(taskId: string, now: number): void {
    this.db
      .prepare("UPDATE tasks SET escrow = 'settled', updated_at = ? WHERE id = ? AND escrow = 'locked'")
      .run(now, taskId);
  }

  addMessage(quoteId: string, authorId: string, body: string, now: number): MessageRow {
    return this.tx(() => {
      const { n } = this.db.prepare("SELECT COUNT(*) AS n FROM messages WHERE quote_id = ?").get(quoteId) as {
        n: number;
      };
      if (n >= MAX_THREAD_MESSAGES)
        throw new MarketConflictError(`this thread is full (${MAX_THREAD_MESSAGES} messages)`);
      const id = Number(
        this.db
          .prepare("INSERT INTO messages (quote_id, author_id, body, created_at) VALUES (?, ?, ?, ?)")
          .run(quoteId, authorId, body, now).lastInsertRowid,
      );
      return this.db.prepare("SELECT * FROM messages WHERE id = ?").get(id) as MessageRow;
    });
  }

  // ---- Lightning collections ----------------------------------------------------------------
  addCollection(c: Omit<CollectionRow, "state" | "fee" | "preimage" | "error" | "updated_at">): void {
    this.db
      .prepare(
        `INSERT INTO collections (id, account_id, mint, invoice, quote, amount, fee_reserve, state, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, 'paying', ?, ?)`,
      )
      .run(
        c.id,
        c.account_id,
        c.mint,
        c.invoice,
        c.quote,
        c.amount,
        c.fee_reserve,
        c.created_at,
        c.created_at,
      );
  }

  /** paying → paid or failed, once. */
  finishCollection(
    id: string,
    state: "paid" | "failed",
    f: { fee?: number; preimage?: string | null; error?: string },
  ): boolean {
    return (
      this.db
        .prepare(
          "UPDATE collections SET state = ?, fee = ?, preimage = ?, error = ?, updated_at = ? WHERE id = ? AND state = 'paying'",
        )
        .run(state, f.fee ?? null, f.preimage ?? null, f.error ?? null, Date.now(), id).changes === 1
    );
  }

  /** Forgets a collect that never got its money set aside. */
  dropCollection(id: string): void {
    this.db.prepare("DELETE FROM collections WHERE id = ? AND state = 'paying'").run(id);
  }

  collection(id: string): CollectionRow | undefined {
    return this.db.prepare("SELECT * FROM collections WHERE id = ?").get(id) as CollectionRow | undefined;
  }

  collectionsOf(accountId: string, limit: number): CollectionRow[] {
    return this.db
      .prepare("SELECT * FROM collections WHERE account_id = ? ORDER BY created_at DESC LIMIT ?")
      .all(accountId, limit) as CollectionRow[];
  }

  payingCollections(): CollectionRow[] {
    return this.db.prepare("SELECT * FROM collections WHERE state = 'paying'").all() as CollectionRow[];
  }

  // ---- inside transactions ------------------------------------------------------------------
  private setTaskState(taskId: string, state: TaskState, now: number): void {
    this.db
      .prepare("UPDATE tasks SET state = ?, updated_at = ?, closed_at = ? WHERE id = ?")
      .run(state, now, FINAL_STATES.includes(state) ? now : null, taskId);
  }

  private rejectPending(taskId: string, now: number): void {
    this.db
      .prepare("UPDATE quotes SET state = 'rejected', updated_at = ? WHERE task_id = ? AND state = 'pending'")
      .run(now, taskId);
  }
}
