/**
 * The ledger moves value only in balanced transactions, never overdraws, settles each hold exactly
 * once, and after any sequence of operations the claims on the gateway equal the ecash it holds.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  Accounts,
  chargeSats,
  InsufficientBalanceError,
  Ledger,
  splitCharge,
} from "../../gateway/ledger/index.js";
import { tempDir } from "../support/cli-process.js";

const MINT = "http://127.0.0.1:3338";
const alice = Accounts.user("alice");

describe("money rules", () => {
  it("charges at least 2 sats and rounds up", () => {
    expect(chargeSats(0)).toBe(2);
    expect(chargeSats(1)).toBe(2);
    expect(chargeSats(2000)).toBe(2);
    expect(chargeSats(2001)).toBe(3);
    expect(chargeSats(123_456)).toBe(124);
  });

  it("gives the provider ≥ 90% and at least 1 sat, and the parts add up", () => {
    for (const charged of [2001, 3000, 17_000, 1_000_000]) {
      for (const pct of [90, 95, 100]) {
        const { providerMsat, gatewayMsat } = splitCharge(charged, pct);
        expect(providerMsat + gatewayMsat).toBe(charged);
        expect(providerMsat).toBeGreaterThanOrEqual(Math.max(1000, Math.floor(charged * 0.9)));
      }
    }
    expect(() => splitCharge(2000, 89)).toThrow(RangeError);
  });

  it("splits the 2-sat floor 1 sat to the provider and 1 to the gateway (Owlrun seed)", () => {
    for (const pct of [90, 95, 100])
      expect(splitCharge(2000, pct)).toEqual({ providerMsat: 1000, gatewayMsat: 1000 });
  });
});

describe("ledger", () => {
  it("deposits, refuses overdrafts without changing anything, withdraws", async () => {
    const ledger = Ledger.open(tempDir());
    expect(await ledger.deposit(alice, 50_000, MINT, "t1")).toBe(true);
    expect(await ledger.deposit(alice, 50_000, MINT, "t1")).toBe(false); // same ref: no double credit
    expect(await ledger.balance(alice)).toBe(50_000);
    await expect(ledger.withdraw(alice, 60_000, MINT, "w1")).rejects.toBeInstanceOf(InsufficientBalanceError);
    expect(await ledger.balance(alice)).toBe(50_000);
    expect(await ledger.withdraw(alice, 20_000, MINT, "w2")).toBe(true);
    expect(await ledger.balance(alice)).toBe(30_000);
    expect(await ledger.balance(Accounts.ecash(MINT))).toBe(30_000);
    await ledger.close();
  });

  it("holds atomically: balance - held >= hold", async () => {
    const ledger = Ledger.open(tempDir());
    await ledger.deposit(alice, 10_000, MINT, "t");
    await ledger.hold("h1", alice, 6_000, "chat");
    await expect(ledger.hold("h2", alice, 6_000, "chat")).rejects.toBeInstanceOf(InsufficientBalanceError);
    expect(await ledger.getHold("h2")).toBeUndefined();
    await ledger.hold("h3", alice, 4_000, "chat");
    expect(await ledger.balance(alice)).toBe(0);
    await ledger.close();
  });

  it("settles a hold exactly once: provider and fees paid, the rest back", async () => {
    const ledger = Ledger.open(tempDir());
    await ledger.deposit(alice, 10_000, MINT, "t");
    await ledger.hold("h", alice, 8_000, "chat");
    const s = { chargedMsat: 3_000, providerId: "node1", providerSharePct: 95 };
    expect(await ledger.settleJob("h", s, alice)).toBe(true);
    expect(await ledger.settleJob("h", s, alice)).toBe(false);
    expect(await ledger.releaseHold("h", alice)).toBe(false);
    expect(await ledger.balance(alice)).toBe(7_000);
    expect(await ledger.balance(Accounts.provider("node1"))).toBe(2_850);
    expect(await ledger.balance(Accounts.fees)).toBe(150);
    expect(await ledger.balance(Accounts.hold("h"))).toBe(0);
    expect((await ledger.getHold("h"))!.state).toBe("settled");
    await ledger.close();
  });

  it("X-Cashu holds are funded by the claimed ecash; change leaves as ecash", async () => {
    const ledger = Ledger.open(tempDir());
    await ledger.holdClaimedEcash("x", MINT, 20_000, "B");
    expect(await ledger.balance(Accounts.ecash(MINT))).toBe(20_000);
    await ledger.settleJob(
      "x",
      { chargedMsat: 2_000, providerId: "n", providerSharePct: 95 },
      Accounts.ecash(MINT),
    );
    // 18 sats went back out as a change token: the gateway keeps only the 2-sat charge.
    expect(await ledger.balance(Accounts.ecash(MINT))).toBe(2_000);
    const audit = await ledger.audit();
    expect(audit.imbalanceMsat).toBe(0);
    await ledger.close();
  });

  it("free-tier jobs pay the provider from promo", async () => {
    const ledger = Ledger.open(tempDir());
    await ledger.hold("f", alice, 0, "free");
    await ledger.settleJob(
      "f",
      { chargedMsat: 2_000, providerId: "n", providerSharePct: 95, free: true },
      alice,
    );
    expect(await ledger.balance(Accounts.provider("n"))).toBe(1_000);
    expect(await ledger.balance(Accounts.promo)).toBe(-1_000);
    expect((await ledger.audit()).imbalanceMsat).toBe(0);
    await ledger.close();
  });

  it("after a random sequence of deposits, holds, settlements, releases and withdrawals the books balance", async () => {
    const ledger = Ledger.open(tempDir());
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    const users = ["a", "b", "c"].map(Accounts.user);
    const open: { id: string; user: string }[] = [];
    let expectedEcash = 0;
    for (let i = 0; i < 400; i++) {
      const user = users[rand(users.length)]!;
      const op = rand(5);
      try {
        if (op === 0) {
          const msat = (rand(50) + 1) * 1000;
          await ledger.deposit(user, msat, MINT, randomUUID());
          expectedEcash += msat;
        } else if (op === 1) {
          const id = randomUUID();
          await ledger.hold(id, user, (rand(20) + 1) * 1000, "chat");
          open.push({ id, user });
        } else if (op === 2 && open.length) {
          const h = open.splice(rand(open.length), 1)[0]!;
          const held = await ledger.balance(Accounts.hold(h.id));
          const charged = Math.min(held, (rand(5) + 2) * 1000);
          if (charged >= 2000) {
            await ledger.settleJob(
              h.id,
              { chargedMsat: charged, providerId: `p${rand(3)}`, providerSharePct: 95 },
              h.user,
            );
          } else await ledger.releaseHold(h.id, h.user);
        } else if (op === 3 && open.length) {
          const h = open.splice(rand(open.length), 1)[0]!;
          await ledger.releaseHold(h.id, h.user);
        } else if (op === 4) {
          const msat = (rand(30) + 1) * 1000;
          await ledger.withdraw(user, msat, MINT, randomUUID());
          expectedEcash -= msat;
        }
      } catch (err) {
        expect(err).toBeInstanceOf(InsufficientBalanceError);
      }
      const audit = await ledger.audit();
      expect(audit.imbalanceMsat).toBe(0);
      for (const [account, msat] of audit.balances) {
        if (account.startsWith("user:") || account.startsWith("hold:"))
          expect(msat).toBeGreaterThanOrEqual(0);
      }
    }
    const audit = await ledger.audit();
    expect(audit.ecashMsat).toBe(expectedEcash);
    let claims = 0;
    for (const [account, msat] of audit.balances) if (!account.startsWith("asset:")) claims += msat;
    expect(claims).toBe(expectedEcash);
    await ledger.close();
  });
});
