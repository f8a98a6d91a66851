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

/** Starts the timers (unref'd: they never keep the process alive); returns how to stop them. */
export function startTimers(
  opts: Pick<GatewayOptions, "payoutIntervalMs" | "sweepIntervalMs" | "topupPollMs">,
  background: Background,
  work: PeriodicWork,
): () => void {
  const payoutEvery = opts.payoutIntervalMs ?? 60_000;
  const payoutTimer =
    opts.payoutIntervalMs === 0
      ? undefined
      : setInterval(
          () => void background("payouts", payoutEvery, work.payouts).catch(() => undefined),
          payoutEvery,
        );
  payoutTimer?.unref();
  const sweepEvery = opts.sweepIntervalMs ?? 60_000;
  const sweeper =
    sweepEvery > 0
      ? setInterval(() => {
          void background("stale-holds", sweepEvery, work.sweepStaleHolds).catch(() => undefined);
          void background("l402-prune", sweepEvery, work.pruneUnpaidChallenges).catch(() => undefined);
        }, sweepEvery)
      : undefined;
  sweeper?.unref();
  const signupPruner = setInterval(work.pruneSignups, 60_000);
  signupPruner.unref();
  // Top-ups are credited once the mint says paid, whether or not their key calls anything (with a
  // database: by one process per period; each credit is once per quote anyway).
  const topupEvery = opts.topupPollMs ?? 5_000;
  const topupPoll =
    opts.topupPollMs === 0
      ? undefined
      : setInterval(
          () => void background("topup-poll", topupEvery, work.creditPaidTopups).catch(() => undefined),
          topupEvery,
        );
  topupPoll?.unref();
  return () => {
    if (payoutTimer) clearInterval(payoutTimer);
    if (sweeper) clearInterval(sweeper);
    clearInterval(signupPruner);
    if (topupPoll) clearInterval(topupPoll);
  };
}
