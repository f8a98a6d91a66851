/**
 * One-shot credentials (L402, BSV) and top-up claims, the same cases against SQLite (`OneShotStore`)
 * and PostgreSQL (`PgOneShotStore`). "Another process" is a second store on the same file or a
 * second connection pool on the same database: a credential moves state once, a claim is made once.
 */
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { PgDatabase } from "../../src/shared/index.js";
import { type OneShotRegistry, OneShotStore } from "../../gateway/payments/oneshot.js";
import { PgOneShotStore } from "../../gateway/payments/oneshot-pg.js";
import { tempDir } from "../support/cli-process.js";
import { testDatabase } from "../support/postgres.js";

interface Setup {
  store: OneShotRegistry;
  other(): Promise<OneShotRegistry>;
  close(): Promise<void>;
}

const implementations: [string, () => Promise<Setup>][] = [
  [
    "sqlite",
    async () => {
      const path = join(tempDir(), "payments.sqlite");
      const stores = [new OneShotStore(path)];
      return {
        store: stores[0]!,
        other: async () => {
          stores.push(new OneShotStore(path));
          return stores.at(-1)!;
        },
        close: async () => stores.forEach((s) => s.close()),
      };
    },
  ],
  [
    "postgres",
    async () => {
      const database = await testDatabase("oneshot");
      const dbs = [await PgDatabase.open(database.url, { max: 6 })];
      return {
        store: await PgOneShotStore.open(dbs[0]!),
        other: async () => {
          dbs.push(await PgDatabase.open(database.url, { max: 6 }));
          return PgOneShotStore.open(dbs.at(-1)!);
        },
        close: async () => {
          await Promise.all(dbs.map((d) => d.close()));
          await database.drop();
        },
      };
    },
  ],
];

const l402 = (id: string, state: "pending" | "paid" = "pending") => ({
  id,
  kind: "l402" as const,
  amount_sat: 21,
  route: "/v1/chat/completions",
  state,
  mint: "http://127.0.0.1:1/mint",
  quote: `q-${id}`,
});

describe.each(implementations)("one-shot credentials on %s", (_name, make) => {
  let setup: Setup | undefined;
  afterEach(async () => {
    await setup?.close();
    setup = undefined;
  });
  const open = async () => (setup = await make());

  it("records a credential once; a replayed id is refused", async () => {
    const { store, other } = await open();
    expect(await store.add(l402("l402:a"))).toBe(true);
    const second = await other();
    expect(await second.add({ ...l402("l402:a"), amount_sat: 1_000_000 })).toBe(false);
    const row = await second.get("l402:a");
    expect(row).toMatchObject({ ...l402("l402:a"), amount_sat: 21 });
    expect(typeof row!.created_at).toBe("number");
    expect(await store.get("l402:none")).toBeUndefined();
    expect(
      await store.add({
        id: "bsv:t",
        kind: "bsv",
        amount_sat: 5,
        route: null,
        state: "paid",
        mint: null,
        quote: null,
      }),
    ).toBe(true);
    expect(await second.get("bsv:t")).toMatchObject({ kind: "bsv", mint: null, quote: null, route: null });
  });

  it("moves state only from the state named, and releases refunded holds of its own kinds", async () => {
    const { store } = await open();
    await store.add(l402("l402:m"));
    expect(await store.move("l402:m", "paid", "in_use")).toBe(false);
    expect(await store.move("l402:m", "pending", "paid")).toBe(true);
    expect(await store.move("l402:m", "paid", "in_use")).toBe(true);
    expect(await store.releaseRefunded({ kind: "xcashu", account: "user:l402:m" })).toBe(false);
    expect((await store.get("l402:m"))!.state).toBe("in_use");
    expect(await store.releaseRefunded({ kind: "l402", account: "user:l402:m" })).toBe(true);
    expect((await store.get("l402:m"))!.state).toBe("paid");
    expect(await store.move("l402:m", "paid", "in_use")).toBe(true);
    expect(await store.move("l402:m", "in_use", "spent")).toBe(true);
    expect(await store.move("l402:m", "in_use", "paid")).toBe(false);
    expect(await store.move("l402:none", "pending", "paid")).toBe(false);
  });

  it("lists stale unpaid challenges and drops only those still pending", async () => {
    const { store } = await open();
    await store.add(l402("l402:old1"));
    await store.add(l402("l402:old2"));
    await store.add(l402("l402:paid", "paid"));
    await store.add({
      id: "bsv:x",
      kind: "bsv",
      amount_sat: 5,
      route: null,
      state: "pending",
      mint: null,
      quote: null,
    });
    const stale = await store.stalePending(Date.now() + 1000, 10);
    expect(stale.map((r) => r.id).sort()).toEqual(["l402:old1", "l402:old2"]);
    expect((await store.stalePending(Date.now() + 1000, 1)).length).toBe(1);
    expect(await store.stalePending(0, 10)).toEqual([]);
    await store.move("l402:old2", "pending", "paid");
    expect(await store.dropPending("l402:old1")).toBe(true);
    expect(await store.dropPending("l402:old2")).toBe(false);
    expect(await store.get("l402:old1")).toBeUndefined();
  });

  it("after a restart, credentials left in use become presentable again", async () => {
    const { store } = await open();
    for (const id of ["l402:u1", "l402:u2", "l402:s"]) {
      await store.add(l402(id, "paid"));
      await store.move(id, "paid", "in_use");
    }
    await store.move("l402:s", "in_use", "spent");
    expect(await store.releaseInUse()).toBe(2);
    expect((await store.get("l402:u1"))!.state).toBe("paid");
    expect((await store.get("l402:s"))!.state).toBe("spent");
  });

  it("claims a top-up once, for one account, from any process", async () => {
    const { store, other } = await open();
    const claim = {
      payment_hash: "ab".repeat(32),
      quote: "q1",
      mint: "http://m",
      amount_sat: 500,
      account_id: null,
      claim_hash: "ef".repeat(32),
    };
    await store.addTopupClaim(claim);
    const second = await other();
    expect(await second.topupClaim(claim.payment_hash)).toMatchObject({ ...claim, state: "pending" });
    expect(await second.topupClaim("cd".repeat(32))).toBeUndefined();
    expect(await second.topupClaimBySecretHash(claim.claim_hash)).toMatchObject({
      ...claim,
      state: "pending",
    });
    expect(await second.topupClaimBySecretHash("cd".repeat(32))).toBeUndefined();
    const wins = await Promise.all([
      store.markClaimed(claim.payment_hash, "acct-1"),
      second.markClaimed(claim.payment_hash, "acct-2"),
    ]);
    expect(wins.filter(Boolean).length).toBe(1);
    const winner = wins[0] ? "acct-1" : "acct-2";
    expect(await store.topupClaim(claim.payment_hash)).toMatchObject({
      state: "claimed",
      account_id: winner,
    });
    expect(await second.claimedTopups()).toMatchObject([
      { payment_hash: claim.payment_hash, account_id: winner },
    ]);
  });

  it("two processes racing to take one credential: exactly one move wins", async () => {
    const { store, other } = await open();
    const second = await other();
    await store.add(l402("l402:race", "paid"));
    const wins = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 ? second : store).move("l402:race", "paid", "in_use")),
    );
    expect(wins.filter(Boolean).length).toBe(1);
    // Settling races too: in_use ends once, either spent or refunded.
    const ends = await Promise.all([
      store.move("l402:race", "in_use", "spent"),
      second.move("l402:race", "in_use", "paid"),
      store.move("l402:race", "in_use", "paid"),
    ]);
    expect(ends.filter(Boolean).length).toBe(1);
  });
});
