/**
 * The task marketplace: who may do what (states.ts, enforced by the store), and where the money goes
 * (always through the ledger). Posting a task and quoting cost a USD fee converted at the oracle's
 * rate, paid from the account balance or with an X-Cashu token (change comes back); accepting a
 * quote locks its price in `escrow:<task>`; a confirmed (or, after the review window, undisputed)
 * delivery releases it to the worker's account; a missed deadline or a worker's refund returns it
 * to the buyer. Workers collect over Lightning through the mint's melt.
 *
 * Money and records live in two stores, so every step that spans both is ordered to be safe and
 * repairable: a state change is claimed in the market store first (exactly one caller wins), then
 * the ledger moves the money once (idempotent by task id), then the store notes it. Opening the
 * market and the sweeper finish whatever a crash interrupted.
 */
import { createHash, randomUUID } from "node:crypto";
import { join } from "node:path";
import { EcashError } from "../../src/shared/ecash/index.js";
import { errorMessage, type Logger } from "../../src/shared/index.js";
import { Accounts, InsufficientBalanceError, type Ledger } from "../ledger/index.js";
import type { Oracle } from "../oracle/index.js";
import type { AccountPayments } from "../payments/account-payments.js";
import type { AccountRow } from "../payments/accounts.js";
import { PaymentError } from "../payments/errors.js";
import { type MeltOutcome, payReservedMelt, resolveReservedMelt } from "../payments/melt-payout.js";
import { RateLimiter } from "../payments/ratelimit.js";
import type { GatewayWallet } from "../payments/wallet.js";
import type { CashuPayments } from "../payments/xcashu.js";
import {
  CollectFailedError,
  DeliveryTooLargeError,
  MarketError,
  MarketForbiddenError,
  MarketNotFoundError,
} from "./errors.js";
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
import {
  checkTaskTransition,
  FINAL_STATES,
  partyOf,
  QUOTABLE_STATES,
  TASK_STATES,
  type TaskState,
} from "./states.js";
import { type CollectionRow, MarketStore, type TaskRow } from "./store.js";
import { collectionView, deliveryMeta, messageView, quoteView, taskView } from "./views.js";

const HOUR = 3_600_000;

export interface MarketOptions {
  /** fee for posting a task, in USD (default 0.05) */
  taskFeeUsd?: number;
  /** fee for submitting a quote, in USD (default 0.01) */
  quoteFeeUsd?: number;
  /** after a delivery the buyer has this long to confirm or dispute, then the escrow goes to the
   *  worker (default 72 h; 0: never released without the buyer) */
  reviewWindowMs?: number;
  /** deadline of a task that names none (default 7 days) */
  defaultDeadlineMs?: number;
  /** largest delivery, decoded (default 5 MiB) */
  maxDeliveryBytes?: number;
  /** how often the sweeper runs (default 60 s; 0 disables the timer — call sweep() yourself) */
  sweepIntervalMs?: number;
  /** authenticated market requests per key and minute (default 120) */
  rateLimitPerMinute?: number;
}

const DEFAULTS: Required<MarketOptions> = {
  taskFeeUsd: 0.05,
  quoteFeeUsd: 0.01,
  reviewWindowMs: 72 * HOUR,
  defaultDeadlineMs: 7 * 24 * HOUR,
  maxDeliveryBytes: 5 * 1024 * 1024,
  sweepIntervalMs: 60_000,
  rateLimitPerMinute: 120,
};

export interface MarketDeps {
  ledger: Ledger;
  accounts: AccountPayments;
  cashu: CashuPayments;
  wallet: GatewayWallet;
  oracle: Oracle;
  log: Logger;
}

/** Paying a fee with an X-Cashu token: `onChange` receives the change (or refund) token. */
export interface CashuPayer {
  token: string;
  onChange(token: string): void;
  /** the payment's request id: its change stays claimable at GET /v1/cashu/change/<id> */
  onOpen?(requestId: string): void;
}

export interface FeeReceipt {
  fee_sats: number;
  paid_with: "balance" | "x-cashu" | "free";
  change_sats?: number;
}

export interface SweepReport {
  expired: number;
  released: number;
  settled: number;
  collections: number;
}

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

export class Market {
  readonly options: Required<MarketOptions>;
  private readonly limiter: RateLimiter;
  private timer?: NodeJS.Timeout;
  /** collects being paid by this process right now (the sweeper leaves them alone) */
  private readonly collecting = new Set<string>();

  private constructor(
    private readonly store: MarketStore,
    private readonly deps: MarketDeps,
    opts: MarketOptions,
  ) {
    const given = Object.entries(opts).filter(([, v]) => v !== undefined);
    this.options = { ...DEFAULTS, ...Object.fromEntries(given) };
    this.limiter = new RateLimiter(this.options.rateLimitPerMinute, 60_000);
  }

  /**
   * Opens the market's store and finishes acceptances a crash interrupted (before any request can
   * start a new one). Call `start()` for the sweeper timer.
   */
  static async open(dataDir: string, deps: MarketDeps, opts: MarketOptions = {}): Promise<Market> {
    const market = new Market(new MarketStore(join(dataDir, "market.sqlite")), deps, opts);
    await market.finishInterruptedAccepts();
    return market;
  }

  start(): void {
    if (this.options.sweepIntervalMs <= 0 || this.timer) return;
    this.timer = setInterval(
      () =>
        void this.sweep().catch((err) =>
          this.deps.log.warn("market sweep failed", { err: errorMessage(err) }),
        ),
      this.options.sweepIntervalMs,
    );
    this.timer.unref();
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.store.close();
  }

  // ---- identity and fees ----------------------------------------------------------------------
  /** A market party is the account whose balance pays: the key itself, or the root of a child key. */
  private async partyId(caller: AccountRow): Promise<string> {
    return (await this.deps.accounts.accounts.payer(caller.id)).id;
  }

  /** Counts an authenticated market request against the key's per-minute limit. */
  rateLimit(caller: AccountRow): void {
    this.limiter.enforce(caller.id, `${this.options.rateLimitPerMinute} market requests per minute`);
  }

  /** A USD fee in whole sats at the oracle's rate (at least 1 sat when the fee is not zero). */
  feeSat(usd: number): number {
    if (usd <= 0) return 0;
    const exact = (usd * 1e8) / this.deps.oracle.pricingRate();
    return Math.max(1, Math.ceil(Number(exact.toFixed(6))));
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
      payment_methods: ["balance", "x-cashu"],
    };
  }

  private async checkCaps(caller: AccountRow, sats: number): Promise<void> {
    const { room, reason } = await this.deps.accounts.accounts.spendRoom(caller.id);
    if (room < sats)
      throw new PaymentError(
        "spend_limit",
        `spend limit reached (${reason}): ${room} sats left, need ${sats}`,
        402,
      );
  }

  private async insufficient(caller: AccountRow, needSat: number, what: string): Promise<PaymentError> {
    const have = await this.deps.accounts.balanceSat(caller);
    return new PaymentError(
      "insufficient_balance",
      `${what} needs ${needSat} sats; your balance is ${have} sats. Top up with POST /v1/balance/topup ` +
        "(a cashu token) or POST /v1/auth/topup (Lightning)",
      402,
      { balance_sats: have, required_sats: needSat },
    );
  }

  /**
   * Runs `act` (a store write) paid by a fee: from an X-Cashu token when one is given (the rest
   * comes back as change), else held on the balance first and charged once `act` succeeded.
   * When `act` refuses, nothing is charged.
   */
  private async payFee<T>(
    caller: AccountRow,
    feeSat: number,
    what: string,
    cashu: CashuPayer | undefined,
    act: () => T,
  ): Promise<{ value: T; receipt: FeeReceipt }> {
    if (feeSat === 0) return { value: act(), receipt: { fee_sats: 0, paid_with: "free" } };
    const { ledger } = this.deps;
    if (cashu) {
      const info = this.deps.cashu.inspect(cashu.token);
      if (info.amountSat < feeSat) {
        throw new PaymentError(
          "insufficient_balance",
          `${what} costs ${feeSat} sats; the X-Cashu token carries ${info.amountSat}`,
          402,
          { required_sats: feeSat },
        );
      }
      const payment = await this.deps.cashu.open(info, `market: ${what}`);
      cashu.onOpen?.(payment.holdId);
      let value: T;
      try {
        value = act();
      } catch (err) {
        const back = await payment.refund(`market: ${what} refused`);
        if (back.changeToken) cashu.onChange(back.changeToken);
        throw err;
      }
      const settled = await payment.chargeFee(feeSat, Accounts.marketFees, `market: ${what}`);
      if (settled.changeToken) cashu.onChange(settled.changeToken);
      return {
        value,
        receipt: { fee_sats: settled.chargedSat, paid_with: "x-cashu", change_sats: settled.changeSat },
      };
    }
    await this.checkCaps(caller, feeSat);
    const user = Accounts.user(await this.partyId(caller));
    const holdId = randomUUID();
    try {
      await ledger.hold(holdId, user, feeSat * 1000, "market_fee", `market: ${what}`);
    } catch (err) {
      if (err instanceof InsufficientBalanceError) throw await this.insufficient(caller, feeSat, what);
      throw err;
    }
    let value: T;
    try {
      value = act();
    } catch (err) {
      await ledger.releaseHold(holdId, user, `market: ${what} refused`);
      throw err;
    }
    await ledger.chargeHold(holdId, Accounts.marketFees, feeSat * 1000, user, `market: ${what}`);
    await this.deps.accounts.accounts.recordSpend(caller.id, feeSat);
    return { value, receipt: { fee_sats: feeSat, paid_with: "balance" } };
  }

  // ---- views ----------------------------------------------------------------------------------
  /** A task as `viewer` may see it: quotes for the buyer (all) and quoters (their own), the delivery for the two parties. */
  private view(t: TaskRow, viewer?: string): TaskView {
    if (viewer === undefined) return taskView(t);
    const party = partyOf(t, viewer);
    const quotes = this.store.quotesOf(t.id);
    const mine = quotes.filter((q) => q.worker_id === viewer).map((q) => quoteView(q, viewer));
    const delivery = () => {
      const d = this.store.deliveryMeta(t.id);
      return d ? deliveryMeta(d) : null;
    };
    if (party === "buyer")
      return taskView(t, {
        role: "buyer",
        quotes: quotes.map((q) => quoteView(q, viewer)),
        delivery: delivery(),
      });
    if (party === "worker") return taskView(t, { role: "worker", quotes: mine, delivery: delivery() });
    return mine.length ? taskView(t, { role: "quoter", quotes: mine }) : taskView(t);
  }

  /** Lists show the caller's part but not quotes or deliveries. */
  private summary(t: TaskRow, viewer: string): TaskView {
    const party = partyOf(t, viewer);
    return taskView(t, { role: party === "other" ? null : party });
  }

  // ---- tasks ----------------------------------------------------------------------------------
  listTasks(q: ListTasksQuery): TaskView[] {
    const states: readonly TaskState[] =
      q.state === undefined ? QUOTABLE_STATES : q.state === "all" ? TASK_STATES : [q.state];
    return this.store.listTasks(states, q.limit, q.offset).map((t) => taskView(t));
  }

  async getTask(taskId: string, caller?: AccountRow): Promise<TaskView> {
    return this.view(this.store.mustTask(taskId), caller && (await this.partyId(caller)));
  }

  async createTask(
    caller: AccountRow,
    body: CreateTaskRequest,
    cashu?: CashuPayer,
  ): Promise<TaskView & FeeReceipt> {
    const buyer = await this.partyId(caller);
    const now = Date.now();
    const deadlineAt =
      now +
      (body.deadline_hours !== undefined
        ? Math.round(body.deadline_hours * HOUR)
        : this.options.defaultDeadlineMs);
    const fee = this.feeSat(this.options.taskFeeUsd);
    const { value, receipt } = await this.payFee(caller, fee, "posting a task", cashu, () =>
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
    return { ...this.view(value, buyer), ...receipt };
  }

  // ---- quotes ---------------------------------------------------------------------------------
  async submitQuote(caller: AccountRow, taskId: string, body: QuoteRequest, cashu?: CashuPayer) {
    const worker = await this.partyId(caller);
    const fee = this.feeSat(this.options.quoteFeeUsd);
    const { value, receipt } = await this.payFee(caller, fee, "submitting a quote", cashu, () =>
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
    const q = this.store.editQuote(
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
   * a quote whose price changed meanwhile is refused.
   */
  async accept(
    caller: AccountRow,
    taskId: string,
    quoteId: string,
    expectPriceSats?: number,
  ): Promise<TaskView> {
    const buyer = await this.partyId(caller);
    const { quote } = this.store.beginAccept(taskId, quoteId, buyer, Date.now(), expectPriceSats);
    try {
      await this.checkCaps(caller, quote.price_sats);
      await this.deps.ledger.lockEscrow(taskId, Accounts.user(buyer), quote.price_sats * 1000);
    } catch (err) {
      this.store.undoAccept(taskId, Date.now());
      if (err instanceof InsufficientBalanceError)
        throw await this.insufficient(caller, quote.price_sats, "accepting this quote (locked in escrow)");
      throw err;
    }
    const task = this.store.finishAccept(taskId, Date.now());
    await this.deps.accounts.accounts.recordSpend(caller.id, quote.price_sats);
    return this.view(task, buyer);
  }

  /** Only the task's buyer and the quote's author read and write a quote's thread. */
  private async thread(caller: AccountRow, taskId: string, quoteId: string) {
    const me = await this.partyId(caller);
    const task = this.store.mustTask(taskId);
    const quote = this.store.mustQuote(taskId, quoteId);
    if (me !== task.buyer_id && me !== quote.worker_id)
      throw new MarketForbiddenError(
        "only the task's buyer and the quote's author can read and write its messages",
      );
    return { me, task, quote };
  }

  async messages(caller: AccountRow, taskId: string, quoteId: string) {
    const { task, quote } = await this.thread(caller, taskId, quoteId);
    return { messages: this.store.messages(quote.id).map((m) => messageView(m, task.buyer_id)) };
  }

  async sendMessage(caller: AccountRow, taskId: string, quoteId: string, body: string) {
    const { me, task, quote } = await this.thread(caller, taskId, quoteId);
    return messageView(this.store.addMessage(quote.id, me, body, Date.now()), task.buyer_id);
  }

  // ---- delivery -------------------------------------------------------------------------------
  /** Refuses (403/404/409) a caller who could not deliver to this task now: checked before the body is read. */
  async checkMayDeliver(caller: AccountRow, taskId: string): Promise<void> {
    checkTaskTransition(
      "deliver",
      this.store.mustTask(taskId),
      { account: await this.partyId(caller) },
      Date.now(),
    );
  }

  async deliver(caller: AccountRow, taskId: string, body: DeliverRequest): Promise<TaskView> {
    const worker = await this.partyId(caller);
    const content = Buffer.from(body.content_base64, "base64");
    if (content.length > this.options.maxDeliveryBytes)
      throw new DeliveryTooLargeError(content.length, this.options.maxDeliveryBytes);
    const task = this.store.deliver(
      taskId,
      worker,
      { filename: body.filename, content, sha256: sha256(content), notes: body.notes ?? null },
      this.options.reviewWindowMs,
      Date.now(),
    );
    return this.view(task, worker);
  }

  async delivery(caller: AccountRow, taskId: string) {
    const task = this.store.mustTask(taskId);
    if (partyOf(task, await this.partyId(caller)) === "other")
      throw new MarketForbiddenError("only the task's buyer and the hired worker can read its delivery");
    const d = this.store.delivery(taskId);
    if (!d) throw new MarketNotFoundError(`nothing has been delivered for task ${taskId} yet`);
    return { ...deliveryMeta(d), content_base64: d.content.toString("base64") };
  }

  // ---- closing a task -------------------------------------------------------------------------
  /** The buyer confirms the delivery (also ends a dispute): the escrow goes to the worker. */
  async confirm(caller: AccountRow, taskId: string): Promise<TaskView> {
    const me = await this.partyId(caller);
    return this.view(
      await this.settle(this.store.transition(taskId, "confirm", { account: me }, Date.now())),
      me,
    );
  }

  /** The buyer disputes the delivery within the review window: no automatic release any more. */
  async dispute(caller: AccountRow, taskId: string, reason: string): Promise<TaskView> {
    const me = await this.partyId(caller);
    return this.view(this.store.transition(taskId, "dispute", { account: me }, Date.now(), reason), me);
  }

  /**
   * The buyer cancels a task nobody was hired for; the hired worker cancels a task they took (the
   * escrow goes back to the buyer).
   */
  async cancel(caller: AccountRow, taskId: string): Promise<TaskView> {
    const me = await this.partyId(caller);
    const action = partyOf(this.store.mustTask(taskId), me) === "worker" ? "refund" : "cancel";
    return this.view(
      await this.settle(this.store.transition(taskId, action, { account: me }, Date.now())),
      me,
    );
  }

  /** The operator ends a dispute (no HTTP route: an operator's decision). */
  async resolveDispute(taskId: string, to: "worker" | "buyer"): Promise<TaskView> {
    const action = to === "worker" ? "resolve_pay" : "resolve_refund";
    return this.view(await this.settle(this.store.transition(taskId, action, "operator", Date.now())));
  }

  /**
   * Moves the escrow of a task that ended: to the worker when paid, back to the buyer otherwise.
   * Exactly once (the ledger refuses a second move of the same escrow), so a retry is harmless.
   */
  private async settle(t: TaskRow): Promise<TaskRow> {
    if (t.escrow !== "locked" || !FINAL_STATES.includes(t.state)) return t;
    const to = t.state === "paid" ? t.worker_id! : t.buyer_id;
    await this.deps.ledger.settleEscrow(t.id, Accounts.user(to));
    this.store.markSettled(t.id, Date.now());
    return this.store.task(t.id)!;
  }

  // ---- the sweeper ----------------------------------------------------------------------------
  /**
   * Expires tasks past their deadline (escrow back to the buyer), releases undisputed deliveries
   * past the review window (escrow to the worker), finishes escrow moves and collects a crash
   * interrupted. Safe to run at any time and concurrently with requests; `now` is for tests.
   */
  async sweep(now = Date.now()): Promise<SweepReport> {
    const report: SweepReport = { expired: 0, released: 0, settled: 0, collections: 0 };
    const due = this.store.due(now);
    const run = async (ids: string[], action: "expire" | "auto_release", key: "expired" | "released") => {
      for (const id of ids) {
        try {
          const t = this.store.transition(id, action, "system", now);
          report[key]++;
          await this.settle(t);
        } catch (err) {
          // A party got there first (confirmed, disputed, delivered): nothing to do.
          if (!(err instanceof MarketError)) throw err;
        }
      }
    };
    await run(due.expire, "expire", "expired");
    await run(due.release, "auto_release", "released");
    for (const t of due.unsettled) {
      await this.settle(t);
      report.settled++;
    }
    for (const c of this.store.payingCollections()) {
      if (this.collecting.has(c.id)) continue;
      if (await this.resolveCollection(c)) report.collections++;
    }
    if (report.expired || report.released || report.settled || report.collections)
      this.deps.log.info("market sweep", { ...report });
    return report;
  }

  /** At start: an accept stopped between the store and the ledger is finished or undone. */
  private async finishInterruptedAccepts(): Promise<void> {
    for (const t of this.store.locking()) {
      const locked = await this.deps.ledger.balance(Accounts.escrow(t.id));
      if (locked > 0) this.store.finishAccept(t.id, Date.now());
      else this.store.undoAccept(t.id, Date.now());
      this.deps.log.warn("finished an interrupted accept", { task: t.id, locked: locked > 0 });
    }
  }

  // ---- collect and me -------------------------------------------------------------------------
  /**
   * Pays the caller's balance to a bolt11 invoice through the mint's melt. The collect is journaled
   * and its amount plus the routing-fee reserve set aside in the ledger before anything is paid;
   * an answer that never came is settled later by asking the mint (the sweeper).
   */
  async collect(caller: AccountRow, body: CollectRequest) {
    if (caller.parent_id) throw new MarketForbiddenError("child keys cannot collect; use the parent key");
    const owner = await this.partyId(caller);
    const mint = this.deps.wallet.trustedMints[0];
    if (!mint) throw new EcashError("mint_unavailable", "the gateway has no mint to pay through", 503);
    const invoice = body.invoice.replace(/^lightning:/i, "");
    const quote = await this.deps.wallet.meltQuote(mint, invoice);
    if (body.amount_sats !== undefined && body.amount_sats !== quote.amountSat)
      throw new PaymentError(
        "invalid_request",
        `the invoice is for ${quote.amountSat} sats, not ${body.amount_sats}`,
        400,
      );
    const need = quote.amountSat + quote.feeReserveSat;
    const id = randomUUID();
    this.store.addCollection({
      id,
      account_id: owner,
      mint,
      invoice,
      quote: quote.quote,
      amount: quote.amountSat,
      fee_reserve: quote.feeReserveSat,
      created_at: Date.now(),
    });
    try {
      await this.deps.ledger.reservePayout(Accounts.user(owner), id, need * 1000);
    } catch (err) {
      this.store.dropCollection(id); // nothing was set aside, nothing will be paid
      if (err instanceof InsufficientBalanceError)
        throw await this.insufficient(
          caller,
          need,
          `collecting ${quote.amountSat} sats (plus up to ${quote.feeReserveSat} routing fee)`,
        );
      throw err;
    }
    this.collecting.add(id);
    try {
      await this.payCollection(this.store.collection(id)!);
    } finally {
      this.collecting.delete(id);
    }
    const row = this.store.collection(id)!;
    if (row.state === "failed") throw new CollectFailedError(row.error ?? "refused");
    return { ...collectionView(row), balance_sats: await this.deps.accounts.balanceSat(caller) };
  }

  private async payCollection(c: CollectionRow): Promise<void> {
    const outcome = await payReservedMelt(this.deps.wallet, this.deps.ledger, Accounts.user(c.account_id), c);
    if (outcome.state === "open")
      this.deps.log.warn("collect outcome unknown; will ask the mint", { id: c.id });
    this.recordCollection(c.id, outcome);
  }

  /** A collect left paying: the mint says whether it was paid (see melt-payout.ts). */
  private async resolveCollection(c: CollectionRow): Promise<boolean> {
    const outcome = await resolveReservedMelt(
      this.deps.wallet,
      this.deps.ledger,
      Accounts.user(c.account_id),
      c,
    );
    return this.recordCollection(c.id, outcome);
  }

  private recordCollection(id: string, outcome: MeltOutcome): boolean {
    if (outcome.state === "paid")
      return this.store.finishCollection(id, "paid", { fee: outcome.feeSat, preimage: outcome.preimage });
    if (outcome.state === "failed")
      return this.store.finishCollection(id, "failed", { error: outcome.error });
    return false;
  }

  async me(caller: AccountRow) {
    const me = await this.partyId(caller);
    return {
      account_id: me,
      balance_sats: await this.deps.accounts.balanceSat(caller),
      escrowed_sats: this.store.escrowedBy(me),
      tasks: this.store.tasksOf("buyer", me, 50).map((t) => this.summary(t, me)),
      work: this.store.tasksOf("worker", me, 50).map((t) => this.summary(t, me)),
      quotes: this.store.quotesBy(me, 50).map((q) => quoteView(q, me)),
      collections: this.store.collectionsOf(me, 20).map(collectionView),
    };
  }
}
