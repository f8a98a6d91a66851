/**
 * The market's records in SQLite (WAL), the embedded default (see store.ts for the interface).
 * Each public method is one `BEGIN IMMEDIATE` transaction (or one statement): the write lock is
 * taken up front, so a transition's check and its write are atomic even across processes. The
 * internals stay synchronous (better-sqlite3); only the interface is async.
 */
import { SqliteStore } from "../../src/shared/sqlite.js";
import {
  type Actor,
  checkQuoteTransition,
  checkTaskTransition,
  FINAL_STATES,
  QUOTABLE_STATES,
  type TaskAction,
  type TaskState,
} from "./states.js";
import {
  acceptInFlight,
  alreadyQuoted,
  checkExpectedPrice,
  type CollectionRow,
  type DeliveryRow,
  type DueWork,
  MAX_THREAD_MESSAGES,
  type MarketStore,
  type MessageRow,
  type NewCollection,
  type NewDelivery,
  type NewQuote,
  type NewTask,
  noQuote,
  noTask,
  type QuoteRow,
  type TaskRow,
  threadFull,
} from "./store.js";

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

export class SqliteMarketStore extends SqliteStore implements MarketStore {
  constructor(path: string) {
    super(path, SCHEMA);
  }

  // ---- reading ------------------------------------------------------------------------------
  async task(id: string): Promise<TaskRow | undefined> {
    return this.getTask(id);
  }

  async mustTask(id: string): Promise<TaskRow> {
    return this.getMustTask(id);
  }

  async listTasks(states: readonly TaskState[], limit: number, offset: number): Promise<TaskRow[]> {
    return this.db
      .prepare(
        `${TASK_SELECT} WHERE t.state IN (${placeholders(states.length)}) ORDER BY t.created_at DESC, t.id LIMIT ? OFFSET ?`,
      )
      .all(...states, limit, offset) as TaskRow[];
  }

  async tasksOf(role: "buyer" | "worker", accountId: string, limit: number): Promise<TaskRow[]> {
    const column = role === "buyer" ? "buyer_id" : "worker_id";
    return this.db
      .prepare(`${TASK_SELECT} WHERE t.${column} = ? ORDER BY t.created_at DESC LIMIT ?`)
      .all(accountId, limit) as TaskRow[];
  }

  async escrowedBy(buyerId: string): Promise<number> {
    const row = this.db
      .prepare(
        "SELECT COALESCE(SUM(price_sats), 0) AS v FROM tasks WHERE buyer_id = ? AND escrow IN ('locking', 'locked')",
      )
      .get(buyerId) as { v: number };
    return row.v;
  }

  async quotesOf(taskId: string): Promise<QuoteRow[]> {
    return this.db
      .prepare("SELECT * FROM quotes WHERE task_id = ? ORDER BY created_at, id")
      .all(taskId) as QuoteRow[];
  }

  async quotesBy(workerId: string, limit: number): Promise<QuoteRow[]> {
    return this.db
      .prepare("SELECT * FROM quotes WHERE worker_id = ? ORDER BY created_at DESC LIMIT ?")
      .all(workerId, limit) as QuoteRow[];
  }

  async mustQuote(taskId: string, quoteId: string): Promise<QuoteRow> {
    return this.getMustQuote(taskId, quoteId);
  }

  async messages(quoteId: string): Promise<MessageRow[]> {
    return this.db
      .prepare("SELECT * FROM messages WHERE quote_id = ? ORDER BY id")
      .all(quoteId) as MessageRow[];
  }

  async delivery(taskId: string): Promise<DeliveryRow | undefined> {
    return this.db.prepare("SELECT * FROM deliveries WHERE task_id = ?").get(taskId) as
      DeliveryRow | undefined;
  }

  async deliveryMeta(taskId: string): Promise<Omit<DeliveryRow, "content"> | undefined> {
    return this.db
      .prepare(
        "SELECT task_id, worker_id, filename, size_bytes, sha256, notes, created_at FROM deliveries WHERE task_id = ?",
      )
      .get(taskId) as Omit<DeliveryRow, "content"> | undefined;
  }

  async due(now: number): Promise<DueWork> {
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

  async locking(): Promise<TaskRow[]> {
    return this.db.prepare(`${TASK_SELECT} WHERE t.escrow = 'locking'`).all() as TaskRow[];
  }

  // ---- changing -----------------------------------------------------------------------------
  async createTask(t: NewTask, now: number): Promise<TaskRow> {
    this.db
      .prepare(
        `INSERT INTO tasks (id, buyer_id, title, description, budget_sats, state, fee_sats, deadline_at, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, 'open', ?, ?, ?, ?)`,
      )
      .run(t.id, t.buyerId, t.title, t.description, t.budgetSats, t.feeSats, t.deadlineAt, now, now);
    return this.getTask(t.id)!;
  }

  async addQuote(taskId: string, q: NewQuote, now: number): Promise<QuoteRow> {
    return this.tx(() => {
      const task = this.getMustTask(taskId);
      const to = checkTaskTransition("quote", task, { account: q.workerId }, now);
      const mine = this.db
        .prepare("SELECT id FROM quotes WHERE task_id = ? AND worker_id = ?")
        .get(taskId, q.workerId) as { id: string } | undefined;
      if (mine) throw alreadyQuoted(taskId, mine.id);
      this.db
        .prepare(
          `INSERT INTO quotes (id, task_id, worker_id, price_sats, description, state, fee_sats, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?)`,
        )
        .run(q.id, taskId, q.workerId, q.priceSats, q.description, q.feeSats, now, now);
      this.setTaskState(taskId, to, now);
      return this.getMustQuote(taskId, q.id);
    });
  }

  async editQuote(
    taskId: string,
    quoteId: string,
    authorId: string,
    patch: { priceSats?: number; description?: string },
    now: number,
  ): Promise<QuoteRow> {
    return this.tx(() => {
      const task = this.getMustTask(taskId);
      const quote = this.getMustQuote(taskId, quoteId);
      checkQuoteTransition("edit", quote, task, { account: authorId });
      checkTaskTransition("quote", task, { account: authorId }, now);
      this.db
        .prepare(
          "UPDATE quotes SET price_sats = COALESCE(?, price_sats), description = COALESCE(?, description), updated_at = ? WHERE id = ?",
        )
        .run(patch.priceSats ?? null, patch.description ?? null, now, quoteId);
      return this.getMustQuote(taskId, quoteId);
    });
  }

  async beginAccept(
    taskId: string,
    quoteId: string,
    buyerId: string,
    now: number,
    expectPriceSats?: number,
  ): Promise<{ task: TaskRow; quote: QuoteRow }> {
    return this.tx(() => {
      const task = this.getMustTask(taskId);
      const quote = this.getMustQuote(taskId, quoteId);
      const actor = { account: buyerId };
      const to = checkTaskTransition("accept", task, actor, now);
      const quoteTo = checkQuoteTransition("accept", quote, task, actor);
      checkExpectedPrice(quote, expectPriceSats);
      this.db
        .prepare(
          "UPDATE tasks SET state = ?, quote_id = ?, worker_id = ?, price_sats = ?, escrow = 'locking', updated_at = ? WHERE id = ?",
        )
        .run(to, quote.id, quote.worker_id, quote.price_sats, now, taskId);
      this.db.prepare("UPDATE quotes SET state = ?, updated_at = ? WHERE id = ?").run(quoteTo, now, quote.id);
      return { task: this.getTask(taskId)!, quote: this.getMustQuote(taskId, quoteId) };
    });
  }

  async finishAccept(taskId: string, now: number): Promise<TaskRow> {
    return this.tx(() => {
      this.db
        .prepare("UPDATE tasks SET escrow = 'locked', updated_at = ? WHERE id = ? AND escrow = 'locking'")
        .run(now, taskId);
      this.rejectPending(taskId, now);
      return this.getTask(taskId)!;
    });
  }

  async undoAccept(taskId: string, now: number): Promise<void> {
    this.tx(() => {
      const task = this.getTask(taskId);
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

  async deliver(
    taskId: string,
    workerId: string,
    d: NewDelivery,
    reviewWindowMs: number,
    now: number,
  ): Promise<TaskRow> {
    return this.tx(() => {
      const task = this.getMustTask(taskId);
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
      return this.getTask(taskId)!;
    });
  }

  async transition(
    taskId: string,
    action: TaskAction,
    actor: Actor,
    now: number,
    disputeReason?: string,
  ): Promise<TaskRow> {
    return this.tx(() => {
      const task = this.getMustTask(taskId);
      const to = checkTaskTransition(action, task, actor, now);
      if (task.escrow === "locking") throw acceptInFlight();
      if (disputeReason !== undefined)
        this.db.prepare("UPDATE tasks SET dispute_reason = ? WHERE id = ?").run(disputeReason, taskId);
      this.setTaskState(taskId, to, now);
      if (!QUOTABLE_STATES.includes(to)) this.rejectPending(taskId, now);
      return this.getTask(taskId)!;
    });
  }

  async markSettled(taskId: string, now: number): Promise<void> {
    this.db
      .prepare("UPDATE tasks SET escrow = 'settled', updated_at = ? WHERE id = ? AND escrow = 'locked'")
      .run(now, taskId);
  }

  async addMessage(quoteId: string, authorId: string, body: string, now: number): Promise<MessageRow> {
    return this.tx(() => {
      const { n } = this.db.prepare("SELECT COUNT(*) AS n FROM messages WHERE quote_id = ?").get(quoteId) as {
        n: number;
      };
      if (n >= MAX_THREAD_MESSAGES) throw threadFull();
      const id = Number(
        this.db
          .prepare("INSERT INTO messages (quote_id, author_id, body, created_at) VALUES (?, ?, ?, ?)")
          .run(quoteId, authorId, body, now).lastInsertRowid,
      );
      return this.db.prepare("SELECT * FROM messages WHERE id = ?").get(id) as MessageRow;
    });
  }

  // ---- Lightning collections ----------------------------------------------------------------
  async addCollection(c: NewCollection): Promise<void> {
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

  async finishCollection(
    id: string,
    state: "paid" | "failed",
    f: { fee?: number; preimage?: string | null; error?: string },
  ): Promise<boolean> {
    return (
      this.db
        .prepare(
          "UPDATE collections SET state = ?, fee = ?, preimage = ?, error = ?, updated_at = ? WHERE id = ? AND state = 'paying'",
        )
        .run(state, f.fee ?? null, f.preimage ?? null, f.error ?? null, Date.now(), id).changes === 1
    );
  }

  async dropCollection(id: string): Promise<void> {
    this.db.prepare("DELETE FROM collections WHERE id = ? AND state = 'paying'").run(id);
  }

  async collection(id: string): Promise<CollectionRow | undefined> {
    return this.db.prepare("SELECT * FROM collections WHERE id = ?").get(id) as CollectionRow | undefined;
  }

  async collectionsOf(accountId: string, limit: number): Promise<CollectionRow[]> {
    return this.db
      .prepare("SELECT * FROM collections WHERE account_id = ? ORDER BY created_at DESC LIMIT ?")
      .all(accountId, limit) as CollectionRow[];
  }

  async payingCollections(): Promise<CollectionRow[]> {
    return this.db.prepare("SELECT * FROM collections WHERE state = 'paying'").all() as CollectionRow[];
  }

  override async close(): Promise<void> {
    super.close();
  }

  // ---- inside transactions (synchronous) ----------------------------------------------------
  private getTask(id: string): TaskRow | undefined {
    return this.db.prepare(`${TASK_SELECT} WHERE t.id = ?`).get(id) as TaskRow | undefined;
  }

  private getMustTask(id: string): TaskRow {
    const t = this.getTask(id);
    if (!t) throw noTask(id);
    return t;
  }

  private getMustQuote(taskId: string, quoteId: string): QuoteRow {
    const q = this.db.prepare("SELECT * FROM quotes WHERE id = ? AND task_id = ?").get(quoteId, taskId) as
      QuoteRow | undefined;
    if (!q) throw noQuote(taskId, quoteId);
    return q;
  }

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
