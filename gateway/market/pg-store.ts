/**
 * The market's records in PostgreSQL (`market_…` tables, component "market"), for several gateway
 * processes sharing one database. Same contract as the SQLite store (store.ts), checked by the same
 * contract test.
 *
 * Isolation: every transition runs at READ COMMITTED and starts with `SELECT … FOR UPDATE` on the
 * task row. The row lock serialises every change of one task (accept, deliver, confirm, dispute,
 * cancel, expire, a quote), and under READ COMMITTED a waiter that gets the lock reads the row as
 * the winner committed it, so the state check in states.ts sees the new state and the loser gets
 * the same typed error as in SQLite. Nothing here reads across tasks to decide a write, so
 * SERIALIZABLE would only add retries. Single-row changes are one guarded statement
 * (`… WHERE state = 'paying'`, `… WHERE escrow = 'locked'`).
 */
import type { Migration, PgClient, PgDatabase } from "../../src/shared/index.js";
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

/** Ids compare byte-wise (COLLATE "C"), as in SQLite, so both stores list ties in the same order. */
export const MARKET_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: `
CREATE TABLE market_tasks (
  id TEXT COLLATE "C" PRIMARY KEY, buyer_id TEXT NOT NULL, title TEXT NOT NULL, description TEXT NOT NULL,
  budget_sats BIGINT NOT NULL, state TEXT NOT NULL, fee_sats BIGINT NOT NULL,
  quote_id TEXT, worker_id TEXT, price_sats BIGINT, escrow TEXT NOT NULL DEFAULT 'none',
  deadline_at BIGINT NOT NULL, review_ends_at BIGINT, dispute_reason TEXT,
  created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, delivered_at BIGINT, closed_at BIGINT);
CREATE INDEX market_tasks_state ON market_tasks (state, created_at);
CREATE INDEX market_tasks_buyer ON market_tasks (buyer_id, created_at);
CREATE INDEX market_tasks_worker ON market_tasks (worker_id, created_at);
CREATE INDEX market_tasks_escrow ON market_tasks (escrow);
CREATE TABLE market_quotes (
  id TEXT COLLATE "C" PRIMARY KEY, task_id TEXT NOT NULL, worker_id TEXT NOT NULL, price_sats BIGINT NOT NULL,
  description TEXT NOT NULL, state TEXT NOT NULL, fee_sats BIGINT NOT NULL,
  created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, UNIQUE (task_id, worker_id));
CREATE INDEX market_quotes_worker ON market_quotes (worker_id, created_at);
CREATE TABLE market_messages (
  id BIGSERIAL PRIMARY KEY, quote_id TEXT NOT NULL, author_id TEXT NOT NULL, body TEXT NOT NULL,
  created_at BIGINT NOT NULL);
CREATE INDEX market_messages_quote ON market_messages (quote_id, id);
CREATE TABLE market_deliveries (
  task_id TEXT PRIMARY KEY, worker_id TEXT NOT NULL, filename TEXT NOT NULL, content BYTEA NOT NULL,
  size_bytes BIGINT NOT NULL, sha256 TEXT NOT NULL, notes TEXT, created_at BIGINT NOT NULL);
CREATE TABLE market_collections (
  id TEXT PRIMARY KEY, account_id TEXT NOT NULL, mint TEXT NOT NULL, invoice TEXT NOT NULL, quote TEXT NOT NULL,
  amount BIGINT NOT NULL, fee_reserve BIGINT NOT NULL, state TEXT NOT NULL, fee BIGINT, preimage TEXT,
  error TEXT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
CREATE INDEX market_collections_account ON market_collections (account_id, created_at);
CREATE INDEX market_collections_state ON market_collections (state);
`,
  },
];

type Queryable = PgClient | PgDatabase["pool"];

const TASK_SELECT =
  "SELECT t.*, (SELECT COUNT(*) FROM market_quotes q WHERE q.task_id = t.id) AS quotes_count FROM market_tasks t";

export class PgMarketStore implements MarketStore {
  private constructor(private readonly db: PgDatabase) {}

  /** Applies the market's migrations (safe when several processes start at once). */
  static async open(db: PgDatabase): Promise<PgMarketStore> {
    await db.migrate("market", MARKET_MIGRATIONS);
    return new PgMarketStore(db);
  }

  // ---- reading ------------------------------------------------------------------------------
  async task(id: string): Promise<TaskRow | undefined> {
    return taskOf(this.db.pool, id);
  }

  async mustTask(id: string): Promise<TaskRow> {
    const t = await this.task(id);
    if (!t) throw noTask(id);
    return t;
  }

  async listTasks(states: readonly TaskState[], limit: number, offset: number): Promise<TaskRow[]> {
    return this.db.query<TaskRow>(
      `${TASK_SELECT} WHERE t.state = ANY($1) ORDER BY t.created_at DESC, t.id LIMIT $2 OFFSET $3`,
      [states, limit, offset],
    );
  }

  async tasksOf(role: "buyer" | "worker", accountId: string, limit: number): Promise<TaskRow[]> {
    const column = role === "buyer" ? "buyer_id" : "worker_id";
    return this.db.query<TaskRow>(
      `${TASK_SELECT} WHERE t.${column} = $1 ORDER BY t.created_at DESC LIMIT $2`,
      [accountId, limit],
    );
  }

  async escrowedBy(buyerId: string): Promise<number> {
    const [row] = await this.db.query<{ v: number }>(
      "SELECT COALESCE(SUM(price_sats), 0) AS v FROM market_tasks WHERE buyer_id = $1 AND escrow IN ('locking', 'locked')",
      [buyerId],
    );
    return row!.v;
  }

  async quotesOf(taskId: string): Promise<QuoteRow[]> {
    return this.db.query<QuoteRow>("SELECT * FROM market_quotes WHERE task_id = $1 ORDER BY created_at, id", [
      taskId,
    ]);
  }

  async quotesBy(workerId: string, limit: number): Promise<QuoteRow[]> {
    return this.db.query<QuoteRow>(
      "SELECT * FROM market_quotes WHERE worker_id = $1 ORDER BY created_at DESC LIMIT $2",
      [workerId, limit],
    );
  }

  async mustQuote(taskId: string, quoteId: string): Promise<QuoteRow> {
    return mustQuoteOf(this.db.pool, taskId, quoteId);
  }

  async messages(quoteId: string): Promise<MessageRow[]> {
    return this.db.query<MessageRow>("SELECT * FROM market_messages WHERE quote_id = $1 ORDER BY id", [
      quoteId,
    ]);
  }

  async delivery(taskId: string): Promise<DeliveryRow | undefined> {
    const [d] = await this.db.query<DeliveryRow>("SELECT * FROM market_deliveries WHERE task_id = $1", [
      taskId,
    ]);
    return d;
  }

  async deliveryMeta(taskId: string): Promise<Omit<DeliveryRow, "content"> | undefined> {
    const [d] = await this.db.query<Omit<DeliveryRow, "content">>(
      "SELECT task_id, worker_id, filename, size_bytes, sha256, notes, created_at FROM market_deliveries WHERE task_id = $1",
      [taskId],
    );
    return d;
  }

  /** Three independent lists: each entry is re-checked under its row lock when the sweeper acts. */
  async due(now: number): Promise<DueWork> {
    const ids = async (sql: string, args: unknown[]) =>
      (await this.db.query<{ id: string }>(sql, args)).map((r) => r.id);
    return {
      expire: await ids(
        "SELECT id FROM market_tasks WHERE state IN ('open', 'quoted', 'accepted') AND escrow != 'locking' AND deadline_at <= $1",
        [now],
      ),
      release: await ids(
        "SELECT id FROM market_tasks WHERE state = 'delivered' AND review_ends_at IS NOT NULL AND review_ends_at <= $1",
        [now],
      ),
      unsettled: await this.db.query<TaskRow>(
        `${TASK_SELECT} WHERE t.escrow = 'locked' AND t.state = ANY($1)`,
        [FINAL_STATES],
      ),
    };
  }

  async locking(): Promise<TaskRow[]> {
    return this.db.query<TaskRow>(`${TASK_SELECT} WHERE t.escrow = 'locking'`);
  }

  // ---- changing -----------------------------------------------------------------------------
  async createTask(t: NewTask, now: number): Promise<TaskRow> {
    await this.db.query(
      `INSERT INTO market_tasks (id, buyer_id, title, description, budget_sats, state, fee_sats, deadline_at, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, 'open', $6, $7, $8, $8)`,
      [t.id, t.buyerId, t.title, t.description, t.budgetSats, t.feeSats, t.deadlineAt, now],
    );
    return (await this.task(t.id))!;
  }

  async addQuote(taskId: string, q: NewQuote, now: number): Promise<QuoteRow> {
    // The task's row lock also serialises two quotes of one worker: the second sees the first.
    return this.db.tx(async (c) => {
      const task = await lockTask(c, taskId);
      const to = checkTaskTransition("quote", task, { account: q.workerId }, now);
      const mine = await c.query<{ id: string }>(
        "SELECT id FROM market_quotes WHERE task_id = $1 AND worker_id = $2",
        [taskId, q.workerId],
      );
      if (mine.rows[0]) throw alreadyQuoted(taskId, mine.rows[0].id);
      await c.query(
        `INSERT INTO market_quotes (id, task_id, worker_id, price_sats, description, state, fee_sats, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $7)`,
        [q.id, taskId, q.workerId, q.priceSats, q.description, q.feeSats, now],
      );
      await setTaskState(c, taskId, to, now);
      return mustQuoteOf(c, taskId, q.id);
    });
  }

  async editQuote(
    taskId: string,
    quoteId: string,
    authorId: string,
    patch: { priceSats?: number; description?: string },
    now: number,
  ): Promise<QuoteRow> {
    // Locking the task orders an edit against an accept of the same quote.
    return this.db.tx(async (c) => {
      const task = await lockTask(c, taskId);
      const quote = await mustQuoteOf(c, taskId, quoteId);
      checkQuoteTransition("edit", quote, task, { account: authorId });
      checkTaskTransition("quote", task, { account: authorId }, now);
      await c.query(
        "UPDATE market_quotes SET price_sats = COALESCE($1, price_sats), description = COALESCE($2, description), updated_at = $3 WHERE id = $4",
        [patch.priceSats ?? null, patch.description ?? null, now, quoteId],
      );
      return mustQuoteOf(c, taskId, quoteId);
    });
  }

  async beginAccept(
    taskId: string,
    quoteId: string,
    buyerId: string,
    now: number,
    expectPriceSats?: number,
  ): Promise<{ task: TaskRow; quote: QuoteRow }> {
    return this.db.tx(async (c) => {
      const task = await lockTask(c, taskId);
      const quote = await mustQuoteOf(c, taskId, quoteId);
      const actor = { account: buyerId };
      const to = checkTaskTransition("accept", task, actor, now);
      const quoteTo = checkQuoteTransition("accept", quote, task, actor);
      checkExpectedPrice(quote, expectPriceSats);
      await c.query(
        "UPDATE market_tasks SET state = $1, quote_id = $2, worker_id = $3, price_sats = $4, escrow = 'locking', updated_at = $5 WHERE id = $6",
        [to, quote.id, quote.worker_id, quote.price_sats, now, taskId],
      );
      await c.query("UPDATE market_quotes SET state = $1, updated_at = $2 WHERE id = $3", [
        quoteTo,
        now,
        quote.id,
      ]);
      return { task: (await taskOf(c, taskId))!, quote: await mustQuoteOf(c, taskId, quoteId) };
    });
  }

  async finishAccept(taskId: string, now: number): Promise<TaskRow> {
    return this.db.tx(async (c) => {
      await c.query(
        "UPDATE market_tasks SET escrow = 'locked', updated_at = $1 WHERE id = $2 AND escrow = 'locking'",
        [now, taskId],
      );
      await rejectPending(c, taskId, now);
      return (await taskOf(c, taskId))!;
    });
  }

  async undoAccept(taskId: string, now: number): Promise<void> {
    await this.db.tx(async (c) => {
      const task = (await c.query<TaskRow>("SELECT * FROM market_tasks WHERE id = $1 FOR UPDATE", [taskId]))
        .rows[0];
      if (!task || task.escrow !== "locking") return;
      await c.query(
        "UPDATE market_tasks SET state = 'quoted', quote_id = NULL, worker_id = NULL, price_sats = NULL, escrow = 'none', updated_at = $1 WHERE id = $2",
        [now, taskId],
      );
      await c.query("UPDATE market_quotes SET state = 'pending', updated_at = $1 WHERE id = $2", [
        now,
        task.quote_id,
      ]);
    });
  }

  async deliver(
    taskId: string,
    workerId: string,
    d: NewDelivery,
    reviewWindowMs: number,
    now: number,
  ): Promise<TaskRow> {
    return this.db.tx(async (c) => {
      const task = await lockTask(c, taskId);
      const to = checkTaskTransition("deliver", task, { account: workerId }, now);
      await c.query(
        `INSERT INTO market_deliveries (task_id, worker_id, filename, content, size_bytes, sha256, notes, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [taskId, workerId, d.filename, d.content, d.content.length, d.sha256, d.notes, now],
      );
      await c.query("UPDATE market_tasks SET delivered_at = $1, review_ends_at = $2 WHERE id = $3", [
        now,
        reviewWindowMs > 0 ? now + reviewWindowMs : null,
        taskId,
      ]);
      await setTaskState(c, taskId, to, now);
      return (await taskOf(c, taskId))!;
    });
  }

  async transition(
    taskId: string,
    action: TaskAction,
    actor: Actor,
    now: number,
    disputeReason?: string,
  ): Promise<TaskRow> {
    return this.db.tx(async (c) => {
      const task = await lockTask(c, taskId);
      const to = checkTaskTransition(action, task, actor, now);
      if (task.escrow === "locking") throw acceptInFlight();
      if (disputeReason !== undefined)
        await c.query("UPDATE market_tasks SET dispute_reason = $1 WHERE id = $2", [disputeReason, taskId]);
      await setTaskState(c, taskId, to, now);
      if (!QUOTABLE_STATES.includes(to)) await rejectPending(c, taskId, now);
      return (await taskOf(c, taskId))!;
    });
  }

  async markSettled(taskId: string, now: number): Promise<void> {
    await this.db.query(
      "UPDATE market_tasks SET escrow = 'settled', updated_at = $1 WHERE id = $2 AND escrow = 'locked'",
      [now, taskId],
    );
  }

  async addMessage(quoteId: string, authorId: string, body: string, now: number): Promise<MessageRow> {
    // The quote's row lock serialises one thread's writers, so the count limit holds exactly.
    return this.db.tx(async (c) => {
      await c.query("SELECT id FROM market_quotes WHERE id = $1 FOR UPDATE", [quoteId]);
      const { rows } = await c.query<{ n: number }>(
        "SELECT COUNT(*) AS n FROM market_messages WHERE quote_id = $1",
        [quoteId],
      );
      if (rows[0]!.n >= MAX_THREAD_MESSAGES) throw threadFull();
      const inserted = await c.query<MessageRow>(
        "INSERT INTO market_messages (quote_id, author_id, body, created_at) VALUES ($1, $2, $3, $4) RETURNING *",
        [quoteId, authorId, body, now],
      );
      return inserted.rows[0]!;
    });
  }

  // ---- Lightning collections ----------------------------------------------------------------
  async addCollection(c: NewCollection): Promise<void> {
    await this.db.query(
      `INSERT INTO market_collections (id, account_id, mint, invoice, quote, amount, fee_reserve, state, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, 'paying', $8, $8)`,
      [c.id, c.account_id, c.mint, c.invoice, c.quote, c.amount, c.fee_reserve, c.created_at],
    );
  }

  async finishCollection(
    id: string,
    state: "paid" | "failed",
    f: { fee?: number; preimage?: string | null; error?: string },
  ): Promise<boolean> {
    const rows = await this.db.query(
      `UPDATE market_collections SET state = $1, fee = $2, preimage = $3, error = $4, updated_at = $5
       WHERE id = $6 AND state = 'paying' RETURNING id`,
      [state, f.fee ?? null, f.preimage ?? null, f.error ?? null, Date.now(), id],
    );
    return rows.length === 1;
  }

  async dropCollection(id: string): Promise<void> {
    await this.db.query("DELETE FROM market_collections WHERE id = $1 AND state = 'paying'", [id]);
  }

  async collection(id: string): Promise<CollectionRow | undefined> {
    const [c] = await this.db.query<CollectionRow>("SELECT * FROM market_collections WHERE id = $1", [id]);
    return c;
  }

  async collectionsOf(accountId: string, limit: number): Promise<CollectionRow[]> {
    return this.db.query<CollectionRow>(
      "SELECT * FROM market_collections WHERE account_id = $1 ORDER BY created_at DESC LIMIT $2",
      [accountId, limit],
    );
  }

  async payingCollections(): Promise<CollectionRow[]> {
    return this.db.query<CollectionRow>("SELECT * FROM market_collections WHERE state = 'paying'");
  }

  /** The database belongs to the composition root, which closes it. */
  async close(): Promise<void> {}
}

// ---- inside transactions ----------------------------------------------------------------------
async function taskOf(q: Queryable, id: string): Promise<TaskRow | undefined> {
  return (await q.query<TaskRow>(`${TASK_SELECT} WHERE t.id = $1`, [id])).rows[0];
}

/** The task, row-locked until the transaction ends (quotes_count is not needed by any check). */
async function lockTask(c: PgClient, id: string): Promise<TaskRow> {
  const t = (await c.query<TaskRow>("SELECT * FROM market_tasks WHERE id = $1 FOR UPDATE", [id])).rows[0];
  if (!t) throw noTask(id);
  return t;
}

async function mustQuoteOf(q: Queryable, taskId: string, quoteId: string): Promise<QuoteRow> {
  const row = (
    await q.query<QuoteRow>("SELECT * FROM market_quotes WHERE id = $1 AND task_id = $2", [quoteId, taskId])
  ).rows[0];
  if (!row) throw noQuote(taskId, quoteId);
  return row;
}

async function setTaskState(c: PgClient, taskId: string, state: TaskState, now: number): Promise<void> {
  await c.query("UPDATE market_tasks SET state = $1, updated_at = $2, closed_at = $3 WHERE id = $4", [
    state,
    now,
    FINAL_STATES.includes(state) ? now : null,
    taskId,
  ]);
}

async function rejectPending(c: PgClient, taskId: string, now: number): Promise<void> {
  await c.query(
    "UPDATE market_quotes SET state = 'rejected', updated_at = $1 WHERE task_id = $2 AND state = 'pending'",
    [now, taskId],
  );
}
