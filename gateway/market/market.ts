/**
 * The task marketplace: who may do what (states.ts, enforced by the store), and where the money goes
 * (always through the ledger). Posting a task and quoting cost a fee (fees.ts); accepting a quote
 * locks its price in `escrow:<task>`; a confirmed (or, after the review window, undisputed)
 * delivery releases it to the worker's account; a missed deadline or a worker's refund returns it
 * to the buyer (escrow.ts, with the sweeper). Workers collect over Lightning (collect.ts).
 *
 * The records live in SQLite (market.sqlite) or, when several gateway processes share one
 * PostgreSQL (`deps.database`), in its `market_…` tables; opening the market and the sweeper
 * finish whatever a crash interrupted, and on PostgreSQL the sweeper runs in one process at a time.
 */
import { createHash, randomUUID } from "node:crypto";
import { join } from "node:path";
import { errorMessage } from "../../src/shared/index.js";
import { Accounts, InsufficientBalanceError } from "../ledger/index.js";
import type { AccountRow } from "../payments/accounts.js";
import { PaymentError } from "../payments/errors.js";
import { RateLimiter } from "../payments/ratelimit.js";
import { MarketCollections } from "./collect.js";
import {
  type FeePayer,
  DEFAULTS,
  type FeeReceipt,
  HOUR,
  type MarketDeps,
  type MarketOptions,
  type SweepReport,
} from "./deps.js";
import { DeliveryTooLargeError, MarketForbiddenError, MarketNotFoundError } from "./errors.js";
import { Escrow } from "./escrow.js";
import { MarketFees, payerIdOf } from "./fees.js";
import { acceptLease, type Leases, LocalLeases, PgLeases } from "./leases.js";
import { PgMarketStore } from "./pg-store.js";
import type {
  CollectRequest,
  CreateTaskRequest,
  DeliverRequest,
  EditQuoteRequest,
  ListTasksQuery,
  MarketInfo,
  QuoteRequest,
  TaskView,
} from "./schemas.js";
import { SqliteMarketStore } from "./sqlite-store.js";
import { checkTaskTransition, QUOTABLE_STATES, TASK_STATES, type TaskState, partyOf } from "./states.js";
import { acceptInFlight, type MarketStore, type TaskRow } from "./store.js";
import { collectionView, deliveryMeta, messageView, quoteView, taskView } from "./views.js";

export type {
  CashuPayer,
  FeePayer,
  FeeReceipt,
  L402Payer,
  MarketDeps,
  MarketOptions,
  SweepReport,
} from "./deps.js";

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const NOTHING_SWEPT: SweepReport = { expired: 0, released: 0, settled: 0, collections: 0 };

export class Market {
  readonly options: Required<MarketOptions>;
  private readonly limiter: RateLimiter;
  private readonly fees: MarketFees;
  private readonly collections: MarketCollections;
  private readonly escrow: Escrow;
  private timer?: NodeJS.Timeout;

  private constructor(
    private readonly store: MarketStore,
    private readonly leases: Leases,
    /** runs a sweep unless another process is running one (PostgreSQL); undefined when it was */
    private readonly exclusively: (fn: () => Promise<SweepReport>) => Promise<SweepReport | undefined>,
    private readonly deps: MarketDeps,
    opts: MarketOptions,
  ) {
    const given = Object.entries(opts).filter(([, v]) => v !== undefined);
    this.options = { ...DEFAULTS, ...Object.fromEntries(given) };
    this.limiter = new RateLimiter(this.options.rateLimitPerMinute, 60_000);
    this.fees = new MarketFees(deps);
    this.collections = new MarketCollections(store, deps, leases, this.fees);
    this.escrow = new Escrow(store, deps, leases, this.collections);
  }

  /**
   * Opens the market's store (PostgreSQL when `deps.database` is given, else market.sqlite in
   * `dataDir`) and finishes acceptances a crash interrupted (before any request can start a new
   * one). Call `start()` for the sweeper timer.
   */
  static async open(dataDir: string, deps: MarketDeps, opts: MarketOptions = {}): Promise<Market> {
    const db = deps.database;
    const market = db
      ? new Market(
          await PgMarketStore.open(db),
          new PgLeases(db),
          (fn) => db.exclusively("market-sweep", fn),
          deps,
          opts,
        )
      : new Market(
          new SqliteMarketStore(join(dataDir, "market.sqlite")),
          new LocalLeases(),
          (fn) => fn(),
          deps,
          opts,
        );
    await market.escrow.repairAccepts();
    return market;
  }

  /**
   * Starts the sweeper timer. `background` (several processes on one database) runs each tick's
   * sweep in one process per period; without it every tick sweeps here.
   */
  start(background?: (name: string, periodMs: number, fn: () => Promise<unknown>) => Promise<unknown>): void {
    if (this.options.sweepIntervalMs <= 0 || this.timer) return;
    const every = this.options.sweepIntervalMs;
    const sweep = () => (background ? background("market-sweep", every, () => this.sweep()) : this.sweep());
    this.timer = setInterval(
      () =>
        void sweep().catch((err) => this.deps.log.warn("market sweep failed", { err: errorMessage(err) })),
      this.options.sweepIntervalMs,
    );
    this.timer.unref();
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.leases.close();
    await this.store.close();
  }

  // ---- identity and fees ----------------------------------------------------------------------
  private partyId(caller: AccountRow): Promise<string> {
    return payerIdOf(this.deps, caller);
  }

  /** Counts an authenticated market request against the key's per-minute limit. */
  rateLimit(caller: AccountRow): void {
    this.limiter.enforce(caller.id, `${this.options.rateLimitPerMinute} market requests per minute`);
  }

  /** A USD fee in whole sats at the oracle's rate (at least 1 sat when the fee is not zero). */
  feeSat(usd: number): number {
    return this.fees.feeSat(usd);
  }

  info(): MarketInfo {
    const o = this.options;
    return {
      task_fee_sats: this.feeSat(o.taskFeeUsd),
      task_fee_usd: o.taskFeeUsd,
      quote_fee_sats: this.feeSat(o.quoteFeeUsd),
      quote_fee_usd: o.quoteFeeUsd,
      btc_usd: this.deps.oracle.pricingRate(),
      default_deadline_hours: o.defaultDeadlineMs / HOUR,
      review_window_hours: o.reviewWindowMs > 0 ? o.reviewWindowMs / HOUR : null,
      max_delivery_bytes: o.maxDeliveryBytes,
      payment_methods: this.deps.l402 ? ["balance", "x-cashu", "l402"] : ["balance", "x-cashu"],
    };
  }

  // ---- views ----------------------------------------------------------------------------------
  /** A task as `viewer` may see it: quotes for the buyer (all) and quoters (their own), the delivery for the two parties. */
  private async view(t: TaskRow, viewer?: string): Promise<TaskView> {
    if (viewer === undefined) return taskView(t);
    const party = partyOf(t, viewer);
    const quotes = await this.store.quotesOf(t.id);
    const mine = quotes.filter((q) => q.worker_id === viewer).map((q) => quoteView(q, viewer));
    const delivery = async () => {
      const d = await this.store.deliveryMeta(t.id);
      return d ? deliveryMeta(d) : null;
    };
    if (party === "buyer")
      return taskView(t, {
        role: "buyer",
        quotes: quotes.map((q) => quoteView(q, viewer)),
        delivery: await delivery(),
      });
    if (party === "worker") return taskView(t, { role: "worker", quotes: mine, delivery: await delivery() });
    return mine.length ? taskView(t, { role: "quoter", quotes: mine }) : taskView(t);
  }

  /** Lists show the caller's part but not quotes or deliveries. */
  private summary(t: TaskRow, viewer: string): TaskView {
    const party = partyOf(t, viewer);
    return taskView(t, { role: party === "other" ? null : party });
  }

  // ---- tasks ----------------------------------------------------------------------------------
  async listTasks(q: ListTasksQuery): Promise<TaskView[]> {
    const states: readonly TaskState[] =
      q.state === undefined ? QUOTABLE_STATES : q.state === "all" ? TASK_STATES : [q.state];
    return (await this.store.listTasks(states, q.limit, q.offset)).map((t) => taskView(t));
  }

  async getTask(taskId: string, caller?: AccountRow): Promise<TaskView> {
    return this.view(await this.store.mustTask(taskId), caller && (await this.partyId(caller)));
  }

  async createTask(
    caller: AccountRow,
    body: CreateTaskRequest,
    payer?: FeePayer,
  ): Promise<TaskView & FeeReceipt> {
    const buyer = await this.partyId(caller);
    const now = Date.now();
    const deadlineAt =
      now +
      (body.deadline_hours !== undefined
        ? Math.round(body.deadline_hours * HOUR)
        : this.options.defaultDeadlineMs);
    const fee = this.feeSat(this.options.taskFeeUsd);
    const { value, receipt } = await this.fees.payFee(caller, fee, "posting a task", payer, () =>
      this.store.createTask(
        {
          id: randomUUID(),
          buyerId: buyer,
          title: body.title,
          description: body.description,
          budgetSats: body.budget_sats,
          feeSats: fee,
          deadlineAt,
        },
        now,
      ),
    );
    return { ...(await this.view(value, buyer)), ...receipt };
  }

  // ---- quotes ---------------------------------------------------------------------------------
  async submitQuote(caller: AccountRow, taskId: string, body: QuoteRequest, payer?: FeePayer) {
    const worker = await this.partyId(caller);
    const fee = this.feeSat(this.options.quoteFeeUsd);
    const { value, receipt } = await this.fees.payFee(caller, fee, "submitting a quote", payer, () =>
      this.store.addQuote(
        taskId,
        {
          id: randomUUID(),
          workerId: worker,
          priceSats: body.price_sats,
          description: body.description,
          feeSats: fee,
        },
        Date.now(),
      ),
    );
    return { ...quoteView(value, worker), ...receipt };
  }

  async editQuote(caller: AccountRow, taskId: string, quoteId: string, body: EditQuoteRequest) {
    const author = await this.partyId(caller);
    const q = await this.store.editQuote(
      taskId,
      quoteId,
      author,
      { priceSats: body.price_sats, description: body.description },
      Date.now(),
    );
    return quoteView(q, author);
  }

  /**
   * The buyer accepts one quote: the task is claimed for it in the store (exactly one of two
   * concurrent accepts wins), then its price moves from the buyer's balance into escrow. When the
   * buyer cannot pay, the claim is undone and the task takes quotes again. With `expectPriceSats`,
   * a quote whose price changed meanwhile is refused. The whole step holds the task's accept lease,
   * so a repair (another process's sweeper) never undoes it halfway.
   */
  async accept(
    caller: AccountRow,
    taskId: string,
    quoteId: string,
    expectPriceSats?: number,
  ): Promise<TaskView> {
    const buyer = await this.partyId(caller);
    const task = await this.leases.run(acceptLease(taskId), async () => {
      const { quote } = await this.store.beginAccept(taskId, quoteId, buyer, Date.now(), expectPriceSats);
      try {
        await this.fees.checkCaps(caller, quote.price_sats);
        await this.deps.ledger.lockEscrow(taskId, Accounts.user(buyer), quote.price_sats * 1000);
      } catch (err) {
        if (err instanceof InsufficientBalanceError) {
          await this.store.undoAccept(taskId, Date.now());
          throw await this.fees.insufficient(
            caller,
            quote.price_sats,
            "accepting this quote (locked in escrow)",
          );
        }
        if (err instanceof PaymentError) await this.store.undoAccept(taskId, Date.now());
        // Any other failure may have come after the ledger committed (a lost answer): ask the
        // ledger; when it cannot answer either, the claim stays `locking` for the sweeper.
        else await this.escrow.repairAccept(taskId).catch(() => undefined);
        throw err;
      }
      const accepted = await this.store.finishAccept(taskId, Date.now());
      await this.deps.accounts.accounts.recordSpend(caller.id, quote.price_sats);
      return accepted;
    });
    if (task) return this.view(task, buyer);
    // Another accept of this task is under way: refuse as the store will once it ends.
    checkTaskTransition("accept", await this.store.mustTask(taskId), { account: buyer }, Date.now());
    throw acceptInFlight();
  }

  /** Only the task's buyer and the quote's author read and write a quote's thread. */
  private async thread(caller: AccountRow, taskId: string, quoteId: string) {
    const me = await this.partyId(caller);
    const task = await this.store.mustTask(taskId);
    const quote = await this.store.mustQuote(taskId, quoteId);
    if (me !== task.buyer_id && me !== quote.worker_id)
      throw new MarketForbiddenError(
        "only the task's buyer and the quote's author can read and write its messages",
      );
    return { me, task, quote };
  }

  async messages(caller: AccountRow, taskId: string, quoteId: string) {
    const { task, quote } = await this.thread(caller, taskId, quoteId);
    return { messages: (await this.store.messages(quote.id)).map((m) => messageView(m, task.buyer_id)) };
  }

  async sendMessage(caller: AccountRow, taskId: string, quoteId: string, body: string) {
    const { me, task, quote } = await this.thread(caller, taskId, quoteId);
    return messageView(await this.store.addMessage(quote.id, me, body, Date.now()), task.buyer_id);
  }

  // ---- delivery -------------------------------------------------------------------------------
  /** Refuses (403/404/409) a caller who could not deliver to this task now: checked before the body is read. */
  async checkMayDeliver(caller: AccountRow, taskId: string): Promise<void> {
    checkTaskTransition(
      "deliver",
      await this.store.mustTask(taskId),
      { account: await this.partyId(caller) },
      Date.now(),
    );
  }

  async deliver(caller: AccountRow, taskId: string, body: DeliverRequest): Promise<TaskView> {
    const worker = await this.partyId(caller);
    const content = Buffer.from(body.content_base64, "base64");
    if (content.length > this.options.maxDeliveryBytes)
      throw new DeliveryTooLargeError(content.length, this.options.maxDeliveryBytes);
    const task = await this.store.deliver(
      taskId,
      worker,
      { filename: body.filename, content, sha256: sha256(content), notes: body.notes ?? null },
      this.options.reviewWindowMs,
      Date.now(),
    );
    return this.view(task, worker);
  }

  async delivery(caller: AccountRow, taskId: string) {
    const task = await this.store.mustTask(taskId);
    if (partyOf(task, await this.partyId(caller)) === "other")
      throw new MarketForbiddenError("only the task's buyer and the hired worker can read its delivery");
    const d = await this.store.delivery(taskId);
    if (!d) throw new MarketNotFoundError(`nothing has been delivered for task ${taskId} yet`);
    return { ...deliveryMeta(d), content_base64: d.content.toString("base64") };
  }

  // ---- closing a task -------------------------------------------------------------------------
  /** The buyer confirms the delivery (also ends a dispute): the escrow goes to the worker. */
  async confirm(caller: AccountRow, taskId: string): Promise<TaskView> {
    const me = await this.partyId(caller);
    const t = await this.store.transition(taskId, "confirm", { account: me }, Date.now());
    return this.view(await this.escrow.settle(t), me);
  }

  /** The buyer disputes the delivery within the review window: no automatic release any more. */
  async dispute(caller: AccountRow, taskId: string, reason: string): Promise<TaskView> {
    const me = await this.partyId(caller);
    return this.view(await this.store.transition(taskId, "dispute", { account: me }, Date.now(), reason), me);
  }

  /**
   * The buyer cancels a task nobody was hired for; the hired worker cancels a task they took (the
   * escrow goes back to the buyer).
   */
  async cancel(caller: AccountRow, taskId: string): Promise<TaskView> {
    const me = await this.partyId(caller);
    const action = partyOf(await this.store.mustTask(taskId), me) === "worker" ? "refund" : "cancel";
    const t = await this.store.transition(taskId, action, { account: me }, Date.now());
    return this.view(await this.escrow.settle(t), me);
  }

  /** The operator ends a dispute (no HTTP route: an operator's decision). */
  async resolveDispute(taskId: string, to: "worker" | "buyer"): Promise<TaskView> {
    const action = to === "worker" ? "resolve_pay" : "resolve_refund";
    return this.view(
      await this.escrow.settle(await this.store.transition(taskId, action, "operator", Date.now())),
    );
  }

  /**
   * Deadlines, review windows and repairs (escrow.ts). On PostgreSQL one process sweeps at a time;
   * the others get an empty report.
   */
  async sweep(now = Date.now()): Promise<SweepReport> {
    return (await this.exclusively(() => this.escrow.sweep(now))) ?? { ...NOTHING_SWEPT };
  }

  // ---- collect and me -------------------------------------------------------------------------
  /** Pays the caller's balance to a bolt11 invoice through the mint's melt (collect.ts). */
  async collect(caller: AccountRow, body: CollectRequest) {
    return this.collections.collect(caller, body);
  }

  async me(caller: AccountRow) {
    const me = await this.partyId(caller);
    return {
      account_id: me,
      balance_sats: await this.deps.accounts.balanceSat(caller),
      escrowed_sats: await this.store.escrowedBy(me),
      tasks: (await this.store.tasksOf("buyer", me, 50)).map((t) => this.summary(t, me)),
      work: (await this.store.tasksOf("worker", me, 50)).map((t) => this.summary(t, me)),
      quotes: (await this.store.quotesBy(me, 50)).map((q) => quoteView(q, me)),
      collections: (await this.store.collectionsOf(me, 20)).map(collectionView),
    };
  }
}
