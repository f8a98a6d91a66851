/**
 * What a restart repairs, in order: the wallet (swaps interrupted mid-flight, restored from the
 * seed), then holds left active by a crash (refunded: X-Cashu holds become claimable change under
 * their request id, account holds go back to the account), then change still owed in the ledger.
 * It works on a snapshot taken before the server listens, so it never touches live requests.
 */
import type { Logger } from "../../src/shared/index.js";
import type { RestoredClaim } from "../../src/shared/ecash/index.js";
import { Accounts, type HoldRow, type Ledger } from "../ledger/index.js";
import type { GatewayWallet } from "./wallet.js";
import { parseClaimOp } from "./claims.js";
import { payOutChange } from "./xcashu.js";

export interface RecoveryReport {
  restoredSat: number;
  freedSat: number;
  refundedHolds: number;
  changeTokensMade: number;
}

export interface RecoverySnapshot {
  activeHolds: HoldRow[];
  owedChange: { holdId: string; msat: number; owner: string }[];
}

function parseCashuOwner(owner: string): { format: "A" | "B"; mint: string } | undefined {
  const m = /^xcashu:([AB]):(.+)$/.exec(owner);
  return m ? { format: m[1] as "A" | "B", mint: m[2]! } : undefined;
}

/** Taken at start, before any request can create new holds or change. */
export async function takeRecoverySnapshot(ledger: Ledger): Promise<RecoverySnapshot> {
  const activeHolds = await ledger.activeHolds();
  const owners = new Map((await ledger.settledCashuHolds()).map((h) => [h.id, h.account]));
  const owedChange: RecoverySnapshot["owedChange"] = [];
  for (const [account, msat] of (await ledger.audit()).balances) {
    if (!account.startsWith("change:") || msat <= 0) continue;
    const holdId = account.slice("change:".length);
    const owner = owners.get(holdId);
    if (owner) owedChange.push({ holdId, msat, owner });
  }
  return { activeHolds, owedChange };
}

/**
 * Refunds one hold that nobody will settle: X-Cashu holds become change claimable under their
 * request id, account holds go back to the account. Returns false when the hold already ended.
 */
export async function refundHold(
  hold: HoldRow,
  ledger: Ledger,
  wallet: GatewayWallet,
  log: Logger,
  memo: string,
): Promise<boolean> {
  const cashu = parseCashuOwner(hold.account);
  const held = await ledger.balance(Accounts.hold(hold.id));
  if (!(await ledger.releaseHold(hold.id, cashu ? Accounts.change(hold.id) : hold.account, memo)))
    return false;
  if (cashu && held > 0) {
    try {
      await payOutChange(ledger, wallet, hold.id, cashu.mint, Math.floor(held / 1000), cashu.format);
    } catch (err) {
      log.warn("change still owed; will retry on next start", { holdId: hold.id, err: String(err) });
    }
  }
  return true;
}

export async function recoverAfterRestart(
  snapshot: RecoverySnapshot,
  ledger: Ledger,
  wallet: GatewayWallet,
  log: Logger,
  /** told of each hold this call refunded (with a shared database: its one-shot credential is freed) */
  onRefunded?: (hold: HoldRow) => unknown,
): Promise<RecoveryReport> {
  const { restoredSat, freedSat, claims } = await wallet.recover();
  await creditRestoredClaims(claims, ledger, wallet, log);
  let refundedHolds = 0;
  for (const hold of snapshot.activeHolds) {
    if (!(await refundHold(hold, ledger, wallet, log, "refunded after restart"))) continue;
    refundedHolds++;
    await onRefunded?.(hold);
  }
  let changeTokensMade = 0;
  for (const c of snapshot.owedChange) {
    const owner = parseCashuOwner(c.owner)!;
    try {
      await payOutChange(ledger, wallet, c.holdId, owner.mint, Math.floor(c.msat / 1000), owner.format);
      changeTokensMade++;
    } catch (err) {
      log.warn("change still owed; will retry on next start", { holdId: c.holdId, err: String(err) });
    }
  }
  const report = { restoredSat, freedSat, refundedHolds, changeTokensMade };
  if (restoredSat || freedSat || refundedHolds || changeTokensMade)
    log.info("recovered after restart", { ...report });
  return report;
}

/**
 * Credits value claimed before a crash whose ledger entry was never written (restored from the seed,
 * or stored in the pool with its claim record still open); returns how many.
 */
export async function creditRestoredClaims(
  claims: RestoredClaim[],
  ledger: Ledger,
  wallet: GatewayWallet,
  log: Logger,
): Promise<number> {
  let n = 0;
  for (const c of claims) {
    const claim = parseClaimOp(c.op);
    if (claim?.kind === "user") {
      if (await ledger.deposit(Accounts.user(claim.accountId), c.sat * 1000, c.mint, c.op)) n++;
    } else if (claim?.kind === "xcashu" && !(await ledger.getHold(claim.holdId))) {
      // The request never got its hold: open it with what was claimed and refund it as change.
      await ledger.holdClaimedEcash(claim.holdId, c.mint, c.sat * 1000, claim.format, "claimed, answer lost");
      const hold = (await ledger.getHold(claim.holdId))!;
      await refundHold(hold, ledger, wallet, log, "claimed, answer lost: refunded");
      n++;
    } else if (claim?.kind === "xcashu" && !(await ledger.holdFunded(claim.holdId))) {
      // The id was reserved but the claim's answer was lost: fund it now and pay it back as change.
      const how = await ledger.fundCashuHold(claim.holdId, c.mint, c.sat * 1000);
      const hold = (await ledger.getHold(claim.holdId))!;
      if (how === "funded") await refundHold(hold, ledger, wallet, log, "claimed, answer lost: refunded");
      else if (how === "change")
        await payOutChange(ledger, wallet, claim.holdId, c.mint, c.sat, claim.format).catch((err) =>
          log.warn("change still owed; will retry on next start", { holdId: claim.holdId, err: String(err) }),
        );
      n++;
    }
    // Credited now or before (deposits are keyed by op, holds funded once): the record is done.
    await wallet.claimFunded(c.op);
  }
  if (n) log.warn("credited tokens claimed before a crash", { count: n });
  return n;
}

const collecting = new Map<string, Promise<{ amount: number; token: string } | undefined>>();

/**
 * The change stored under `id` (an X-Cashu request or an ecash withdrawal), made now when the
 * ledger still owes it (the mint was down, or a crash came between the debit and the token).
 * One call per id at a time, so a token is never made twice.
 */
export function collectChange(
  ledger: Ledger,
  wallet: GatewayWallet,
  id: string,
): Promise<{ amount: number; token: string } | undefined> {
  let running = collecting.get(id);
  if (!running) {
    running = (async () => {
      const stored = await wallet.change(id);
      if (stored) return stored;
      const owedSat = Math.floor((await ledger.balance(Accounts.change(id))) / 1000);
      const hold = owedSat > 0 ? await ledger.getHold(id) : undefined;
      const owner = hold && parseCashuOwner(hold.account);
      if (!owner) return wallet.change(id);
      const token = await payOutChange(ledger, wallet, id, owner.mint, owedSat, owner.format);
      return { amount: owedSat, token };
    })().finally(() => collecting.delete(id));
    collecting.set(id, running);
  }
  return running;
}
