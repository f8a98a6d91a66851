/**
 * Change owed at a restart, paid by the restarting process while another live process pays the
 * same change (its buyer fetching it there): one token per id, the ledger debits it once, and the
 * pool loses exactly what the token carries. No sat lost, none paid twice.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import { recoverAfterRestart, takeRecoverySnapshot } from "../../gateway/payments/recovery.js";
import { inspectToken } from "../../src/shared/ecash/index.js";
import { silentLogger } from "../../src/shared/index.js";
import { sumAmounts } from "../support/cashu.js";
import { type GatewayPair, startGatewayPair } from "../support/gateway-pair.js";
import { fundedPurse, type Purse } from "../support/purse.js";

let pair: GatewayPair;
let purse: Purse;

beforeAll(async () => {
  pair = await startGatewayPair({ prefix: "changerace", mintOnDatabase: true });
  purse = await fundedPurse(pair.mintUrl, 500);
});
afterAll(async () => {
  await pair?.close();
});

/** An X-Cashu request's hold ended unpaid out (as a crash between refund and token leaves it): change owed. */
async function owedChange(sats: number): Promise<string> {
  const { a, mintUrl } = pair;
  const id = randomUUID();
  await a.gateway.wallet.claim(inspectToken(await purse.token(sats)));
  await a.gateway.ledger.holdClaimedEcash(id, mintUrl, sats * 1000, "B");
  expect(await a.gateway.ledger.releaseHold(id, `change:${id}`)).toBe(true);
  return id;
}

it("a restart's change payout racing another process paying the same change makes one token", async () => {
  const { a, b, mintUrl } = pair;
  // The pool holds more than the change (a prepaid balance), so both processes can make a token.
  await a.gateway.wallet.claim(inspectToken(await purse.token(200)));
  expect(await a.gateway.ledger.deposit("user:prepaid", 200_000, mintUrl, "prepaid-1")).toBe(true);
  const ids: string[] = [];
  for (const sats of [11, 12, 13, 14, 15, 16]) ids.push(await owedChange(sats));
  const before = await a.gateway.ledger.audit();
  const poolBefore = await a.gateway.wallet.balance(mintUrl);
  // The restarting process A pays what its snapshot says is owed, while the buyers fetch their
  // change from B at the same moment (B makes the token when none is stored yet).
  const snapshot = await takeRecoverySnapshot(a.gateway.ledger);
  expect(snapshot.owedChange.map((c) => c.holdId).sort()).toEqual([...ids].sort());
  const [report, fetched] = await Promise.all([
    recoverAfterRestart({ ...snapshot, activeHolds: [] }, a.gateway.ledger, a.gateway.wallet, silentLogger),
    Promise.all(
      ids.map((id) => fetch(`${b.url}/v1/cashu/change/${id}`).then(async (r) => (await r.json()) as any)),
    ),
  ]);
  expect(report.changeTokensMade).toBe(ids.length);
  let paid = 0;
  for (const [i, id] of ids.entries()) {
    const stored = (await a.gateway.wallet.change(id))!;
    // Whoever made it, B answered with the one stored token, of the whole amount owed.
    expect(fetched[i].token).toBe(stored.token);
    expect(stored.amount).toBe(11 + i);
    expect(await a.gateway.ledger.balance(`change:${id}`)).toBe(0);
    paid += stored.amount;
    // And it is worth that at the mint: the client redeems it.
    expect(sumAmounts(await purse.wallet.receive(stored.token))).toBe(stored.amount);
  }
  // The ledger's ecash moved by exactly the change paid, and so did the pool (no proof kept twice
  // in the pool or lost from it).
  const after = await a.gateway.ledger.audit();
  expect(after.imbalanceMsat).toBe(0);
  expect(before.ecashMsat - after.ecashMsat).toBe(paid * 1000);
  expect(await a.gateway.wallet.balance(mintUrl)).toBe(after.ecashMsat / 1000);
  expect(poolBefore - (await a.gateway.wallet.balance(mintUrl))).toBe(paid);
});
