/**
 * The gateway's periodic work: provider payouts, the stale-hold sweep with L402 challenge pruning,
 * the Lightning top-up poll, and the account sign-up limiter's pruning. With a database each runs
 * through `background`, which gives a period's work to one process of the cluster.
 */
import type { GatewayOptions } from "./options.js";

/** Runs `fn` now, or, with a cluster, in the one process that claims this period's `name`. */
export type Background = <T>(name: string, periodMs: number, fn: () => Promise<T>) => Promise<T | undefined>;

export interface PeriodicWork {
  payouts(): Promise<unknown>;
  sweepStaleHolds(): Promise<number>;
  pruneUnpaidChallenges(): Promise<number>;
  creditPaidTopups(): Promise<unknown>;
  pruneSignups(): void;
}

/**
 * Every `everyMs` (when `on`), each job through `background`; a job that fails waits for its next
 * period. Unref'd: it never keeps the process alive.
 */
function periodic(
  on: boolean,
  everyMs: number,
  background: Background,
  jobs: [name: string, fn: () => Promise<unknown>][],
): NodeJS.Timeout | undefined {
  if (!on) return undefined;
  const timer = setInterval(() => {
    for (const [name, fn] of jobs) void background(name, everyMs, fn).catch(() => undefined);
  }, everyMs);
  timer.unref();
  return timer;
}

/** Starts the timers; returns how to stop them. */
export function startTimers(
  opts: Pick<GatewayOptions, "payoutIntervalMs" | "sweepIntervalMs" | "topupPollMs">,
  background: Background,
  work: PeriodicWork,
): () => void {
  const payoutEvery = opts.payoutIntervalMs ?? 60_000;
  const sweepEvery = opts.sweepIntervalMs ?? 60_000;
  // Top-ups are credited once the mint says paid, whether or not their key calls anything (with a
  // database: by one process per period; each credit is once per quote anyway).
  const topupEvery = opts.topupPollMs ?? 5_000;
  const timers = [
    periodic(opts.payoutIntervalMs !== 0, payoutEvery, background, [["payouts", work.payouts]]),
    periodic(sweepEvery > 0, sweepEvery, background, [
      ["stale-holds", work.sweepStaleHolds],
      ["l402-prune", work.pruneUnpaidChallenges],
    ]),
    periodic(opts.topupPollMs !== 0, topupEvery, background, [["topup-poll", work.creditPaidTopups]]),
  ];
  const signupPruner = setInterval(work.pruneSignups, 60_000);
  signupPruner.unref();
  return () => {
    for (const t of timers) if (t) clearInterval(t);
    clearInterval(signupPruner);
  };
}
