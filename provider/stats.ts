/**
 * What a node counts about itself (jobs, tokens, earnings) and what it learns from the gateway's
 * `heartbeat_ack`: earnings, balance, the newest payout and broadcasts (logged once each).
 */
import type { Logger } from "../src/shared/index.js";
import type { HeartbeatAck, WithdrawRecord } from "./protocol.js";

export interface LastPayout {
  sats: number;
  paymentHash?: string;
  at?: string;
}

export interface NodeStats {
  /** jobs that ran (completed or cancelled) */
  jobs: number;
  cancelled: number;
  failed: number;
  rejected: number;
  /** completion tokens served */
  tokens: number;
  promptTokens: number;
  /** from the gateway's last heartbeat_ack */
  earnedTodaySats: number;
  earnedTotalSats: number;
  balanceSats: number;
  /** summed from job_complete */
  earnedUsd: number;
  /** the newest entry of the gateway's withdraw_history */
  lastPayout?: LastPayout;
  reconnects: number;
}

export function emptyStats(): NodeStats {
  return {
    jobs: 0,
    cancelled: 0,
    failed: 0,
    rejected: 0,
    tokens: 0,
    promptTokens: 0,
    earnedTodaySats: 0,
    earnedTotalSats: 0,
    balanceSats: 0,
    earnedUsd: 0,
    reconnects: 0,
  };
}

function payoutOf(history: WithdrawRecord[]): LastPayout | undefined {
  const time = (r: WithdrawRecord) => {
    const t = r.timestamp;
    if (typeof t === "number") return t < 1e12 ? t * 1000 : t;
    const ms = t ? Date.parse(t) : NaN;
    return Number.isNaN(ms) ? 0 : ms;
  };
  const last = history.reduce<WithdrawRecord | undefined>(
    (best, r) => (!best || time(r) >= time(best) ? r : best),
    undefined,
  );
  if (!last) return undefined;
  const ms = time(last);
  return {
    sats: Math.floor((last.amount_sats ?? 0) / 1000),
    ...(last.payment_hash ? { paymentHash: last.payment_hash } : {}),
    ...(ms ? { at: new Date(ms).toISOString() } : {}),
  };
}

/** Applies a heartbeat_ack to the stats; each broadcast is logged once (`seen` remembers them). */
export function applyHeartbeatAck(s: NodeStats, msg: HeartbeatAck, seen: Set<string>, log: Logger): void {
  s.earnedTodaySats = msg.earned_today_sats ?? s.earnedTodaySats;
  s.earnedTotalSats = msg.earned_total_sats ?? s.earnedTotalSats;
  s.balanceSats = msg.balance_sats ?? s.balanceSats;
  const payout = msg.withdraw_history?.length ? payoutOf(msg.withdraw_history) : undefined;
  if (payout) s.lastPayout = payout;
  for (const b of msg.broadcasts ?? []) {
    const key = String(b.id ?? `${b.title}|${b.message}`);
    if (seen.has(key)) continue;
    seen.add(key);
    log.info(`gateway broadcast: ${b.title ?? ""}${b.message ? `: ${b.message}` : ""}`, {
      severity: b.severity,
    });
  }
}
