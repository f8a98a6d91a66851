/**
 * Whose a claimed token is, written into the wallet's swap op before the swap leaves: when the
 * mint swapped but the answer was lost (a crash, a dropped connection), the value is restored from
 * the seed on the next start and these ops say where it goes — X-Cashu change under the request id,
 * or the account the deposit was for (recovery.ts). Without them the client's token is spent and
 * nobody is credited.
 */
import { randomUUID } from "node:crypto";
import { CLAIM_OP_PREFIX, type TokenFormat } from "../../src/shared/ecash/index.js";

export const claimOp = {
  /** an X-Cashu payment: the hold (= request id) and the change's token format */
  xcashu: (format: TokenFormat, holdId: string) => `${CLAIM_OP_PREFIX}xcashu:${format}:${holdId}`,
  /** a deposit to a prepaid account; also the ledger ref of the deposit, so it is credited once */
  user: (accountId: string) => `${CLAIM_OP_PREFIX}user:${accountId}:${randomUUID()}`,
};

type ParsedClaim =
  { kind: "xcashu"; format: TokenFormat; holdId: string } | { kind: "user"; accountId: string };

export function parseClaimOp(op: string): ParsedClaim | undefined {
  const x = /^claim:xcashu:([AB]):(.+)$/.exec(op);
  if (x) return { kind: "xcashu", format: x[1] as TokenFormat, holdId: x[2]! };
  const u = /^claim:user:(.+):[0-9a-f-]{36}$/.exec(op);
  return u ? { kind: "user", accountId: u[1]! } : undefined;
}
