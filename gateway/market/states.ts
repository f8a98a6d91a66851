/**
 * Every state change of a market task and quote, in one table each: from which states, to which
 * state, by whom, and any time rule. The store applies a transition only inside the same
 * transaction that checked it, so two callers can never both win.
 *
 * Tasks: open → quoted → accepted (escrow locked) → delivered → paid, and also cancelled, expired
 * and disputed. Money follows the state: accepting locks the quote's price in escrow; a task that
 * ends `paid` releases it to the worker; one that ends `cancelled` or `expired` after a quote was
 * accepted returns it to the buyer.
 */
import { MarketConflictError, MarketForbiddenError } from "./errors.js";

export const TASK_STATES = [
  "open",
  "quoted",
  "accepted",
  "delivered",
  "disputed",
  "paid",
  "cancelled",
  "expired",
] as const;
export type TaskState = (typeof TASK_STATES)[number];

export const QUOTE_STATES = ["pending", "accepted", "rejected"] as const;
export type QuoteState = (typeof QUOTE_STATES)[number];

/** States a task never leaves. */
export const FINAL_STATES: readonly TaskState[] = ["paid", "cancelled", "expired"];
/** States in which a task takes quotes (and its pending quotes may change). */
export const QUOTABLE_STATES: readonly TaskState[] = ["open", "quoted"];

/** Who acts, relative to a task: its buyer, the worker whose quote was accepted, anyone else. */
export type Party = "buyer" | "worker" | "other";
/** An account, or the market itself (deadlines, review windows), or the operator (disputes). */
export type Actor = { account: string } | "system" | "operator";

export interface TaskFacts {
  state: TaskState;
  buyer_id: string;
  worker_id: string | null;
  deadline_at: number;
  review_ends_at: number | null;
}

interface Rule<S extends string> {
  from: readonly S[];
  to: S;
  by: Party | "author" | "system" | "operator";
  /** the action in words, for refusals: "cannot <what>" */
  what: string;
  /** a time rule: returns why not, or undefined when allowed */
  when?: (t: TaskFacts, now: number) => string | undefined;
}

const iso = (ms: number) => new Date(ms).toISOString();
const beforeDeadline = (t: TaskFacts, now: number) =>
  now < t.deadline_at ? undefined : `the task's deadline passed at ${iso(t.deadline_at)}`;

export const TASK_TRANSITIONS = {
  quote: { from: QUOTABLE_STATES, to: "quoted", by: "other", what: "quote", when: beforeDeadline },
  accept: { from: ["quoted"], to: "accepted", by: "buyer", what: "accept a quote", when: beforeDeadline },
  deliver: { from: ["accepted"], to: "delivered", by: "worker", what: "deliver", when: beforeDeadline },
  confirm: { from: ["delivered", "disputed"], to: "paid", by: "buyer", what: "confirm the delivery" },
  dispute: {
    from: ["delivered"],
    to: "disputed",
    by: "buyer",
    what: "dispute the delivery",
    when: (t, now) =>
      t.review_ends_at === null || now < t.review_ends_at
        ? undefined
        : `the review window closed at ${iso(t.review_ends_at)}`,
  },
  /** the buyer withdraws a task nobody has been hired for */
  cancel: { from: QUOTABLE_STATES, to: "cancelled", by: "buyer", what: "cancel the task" },
  /** the hired worker gives up: the escrow goes back to the buyer */
  refund: {
    from: ["accepted", "delivered", "disputed"],
    to: "cancelled",
    by: "worker",
    what: "cancel and refund the task",
  },
  expire: {
    from: ["open", "quoted", "accepted"],
    to: "expired",
    by: "system",
    what: "expire the task",
    when: (t, now) => (now >= t.deadline_at ? undefined : "its deadline has not passed"),
  },
  auto_release: {
    from: ["delivered"],
    to: "paid",
    by: "system",
    what: "release the escrow",
    when: (t, now) =>
      t.review_ends_at !== null && now >= t.review_ends_at ? undefined : "the review window is open",
  },
  resolve_pay: { from: ["disputed"], to: "paid", by: "operator", what: "resolve the dispute" },
  resolve_refund: { from: ["disputed"], to: "cancelled", by: "operator", what: "resolve the dispute" },
} as const satisfies Record<string, Rule<TaskState>>;
export type TaskAction = keyof typeof TASK_TRANSITIONS;

export const QUOTE_TRANSITIONS = {
  edit: { from: ["pending"], to: "pending", by: "author", what: "change the quote" },
  accept: { from: ["pending"], to: "accepted", by: "buyer", what: "accept the quote" },
  /** another quote won, or the task closed */
  reject: { from: ["pending"], to: "rejected", by: "system", what: "close the quote" },
} as const satisfies Record<string, Rule<QuoteState>>;
export type QuoteAction = keyof typeof QUOTE_TRANSITIONS;

const STATE_NOTE: Record<TaskState, string> = {
  open: "no quotes yet",
  quoted: "no quote accepted yet",
  accepted: "the worker has not delivered yet",
  delivered: "waiting for the buyer to confirm",
  disputed: "the buyer disputed the delivery",
  paid: "the escrow went to the worker",
  cancelled: "it was cancelled",
  expired: "its deadline passed",
};

const ONLY: Record<Party | "author", string> = {
  buyer: "only the task's buyer can",
  worker: "only the worker whose quote was accepted can",
  other: "the buyer cannot",
  author: "only the quote's author can",
};

export function partyOf(t: Pick<TaskFacts, "buyer_id" | "worker_id">, account: string): Party {
  if (account === t.buyer_id) return "buyer";
  if (t.worker_id !== null && account === t.worker_id) return "worker";
  return "other";
}

function checkActor(rule: Rule<string>, actor: Actor, party: () => Party | "author" | "none"): void {
  const who = typeof actor === "string" ? actor : party();
  // "other" is anyone but the buyer (a hired worker included).
  if (who === rule.by || (rule.by === "other" && who === "worker")) return;
  if (rule.by === "system" || rule.by === "operator")
    throw new MarketForbiddenError(`only the market can ${rule.what}`);
  throw new MarketForbiddenError(`${ONLY[rule.by]} ${rule.what}`);
}

/** Checks a task transition (actor, then state, then time) and returns the new state; throws 403/409. */
export function checkTaskTransition(action: TaskAction, t: TaskFacts, actor: Actor, now: number): TaskState {
  const rule: Rule<TaskState> = TASK_TRANSITIONS[action];
  checkActor(rule, actor, () => partyOf(t, (actor as { account: string }).account));
  if (!rule.from.includes(t.state))
    throw new MarketConflictError(`cannot ${rule.what}: the task is ${t.state} (${STATE_NOTE[t.state]})`);
  const why = rule.when?.(t, now);
  if (why) throw new MarketConflictError(`cannot ${rule.what}: ${why}`);
  return rule.to;
}

/** Checks a quote transition (actor, then state) and returns the new state; throws 403/409. */
export function checkQuoteTransition(
  action: QuoteAction,
  q: { state: QuoteState; worker_id: string },
  t: Pick<TaskFacts, "buyer_id">,
  actor: Actor,
): QuoteState {
  const rule: Rule<QuoteState> = QUOTE_TRANSITIONS[action];
  checkActor(rule, actor, () => {
    const account = (actor as { account: string }).account;
    if (rule.by === "author") return account === q.worker_id ? "author" : "none";
    return account === t.buyer_id ? "buyer" : "none";
  });
  if (!rule.from.includes(q.state))
    throw new MarketConflictError(`cannot ${rule.what}: the quote is ${q.state}`);
  return rule.to;
}
