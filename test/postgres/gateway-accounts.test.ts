/**
 * Two gateway processes (the built CLI, separate data dirs) on one PostgreSQL database: an rc_ key
 * made on one works on the other, the free tier is counted once across both, a provider key made by
 * the CLI serves on either, and the admin token and broadcasts are the same everywhere.
 */
import { chmodSync, copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type CliProcess, runCli, startCli, tempDir } from "../support/cli-process.js";
import { type Agent, startAgent } from "../support/owlrun-agent.js";
import { testDatabase } from "../support/postgres.js";

const MODEL = "owlrun-test-scripted:tiny";
let db: { url: string; drop(): Promise<void> };
const gws: CliProcess[] = [];
const agents: Agent[] = [];

const api = (gw: CliProcess, path: string, key?: string, body?: unknown) =>
  fetch(`${gw.url}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

beforeAll(async () => {
  db = await testDatabase("gwacct");
  const dirs = [tempDir(), tempDir()];
  for (const [i, dir] of dirs.entries()) {
    // One bundled mint on the shared database: the second process signs with the first's keys.
    if (i > 0) {
      mkdirSync(join(dir, "mint"), { recursive: true, mode: 0o700 });
      copyFileSync(join(dirs[0]!, "mint", "master-secret"), join(dir, "mint", "master-secret"));
      chmodSync(join(dir, "mint", "master-secret"), 0o600);
    }
    gws.push(
      await startCli([
        "gateway",
        "--port",
        "0",
        "--data-dir",
        dir,
        "--database-url",
        db.url,
        "--fake-delay-ms",
        "20",
      ]),
    );
  }
  // A provider key from the shell, into the database: it registers and serves on the other process.
  const made = await runCli(["gateway", "provider-key", "--data-dir", tempDir(), "--database-url", db.url]);
  expect(made.code).toBe(0);
  const key = made.stdout.trim();
  agents.push(
    await startAgent(gws[1]!.url, { models: [MODEL], reply: ["ok"], freeTierPct: 20 }, { apiKey: key }),
  );
  agents.push(await startAgent(gws[0]!.url, { models: [MODEL], reply: ["ok"], freeTierPct: 20 }));
}, 120_000);

afterAll(async () => {
  await Promise.all(agents.map((a) => a.close()));
  await Promise.all(gws.map((g) => g.stop()));
  await db?.drop();
});

it("an rc_ key made on one process has one free quota across both", async () => {
  const reg = await api(gws[0]!, "/v1/auth/register", undefined, { name: "shared" });
  expect(reg.status).toBe(201);
  const { api_key } = (await reg.json()) as { api_key: string };
  expect(await (await api(gws[1]!, "/v1/balance", api_key)).json()).toEqual({
    balance_sats: 0,
    free_remaining: 10,
  });
  const chat = (gw: CliProcess) =>
    api(gw, "/v1/chat/completions", api_key, {
      model: MODEL,
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 8,
    });
  // 14 requests at once, spread over both processes: exactly the 10 free ones are served.
  const statuses = await Promise.all(
    Array.from({ length: 14 }, (_, i) => chat(gws[i % 2]!).then((r) => r.status)),
  );
  expect(statuses.filter((s) => s === 200)).toHaveLength(10);
  expect(statuses.filter((s) => s === 402)).toHaveLength(4);
  expect(await (await api(gws[0]!, "/v1/balance", api_key)).json()).toEqual({
    balance_sats: 0,
    free_remaining: 0,
  });
});

it("the admin token and broadcasts are shared by the processes and the CLI", async () => {
  const tok = await runCli(["gateway", "admin-token", "--data-dir", tempDir(), "--database-url", db.url]);
  const token = tok.stdout.trim();
  expect(token).toMatch(/^owlr_admin_/);
  const pub = await fetch(`${gws[0]!.url}/v1/admin/broadcasts`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ message: "hello from process one" }),
  });
  expect(pub.status).toBe(201);
  const cli = await runCli([
    "gateway",
    "broadcast",
    "from the shell",
    "--data-dir",
    tempDir(),
    "--database-url",
    db.url,
  ]);
  expect(cli.code).toBe(0);
  const seen = (await (await api(gws[1]!, "/v1/broadcasts")).json()) as { broadcasts: { message: string }[] };
  expect(seen.broadcasts.map((b) => b.message).sort()).toEqual(["from the shell", "hello from process one"]);
});

it("a metered business key (CLI, --credit-limit-sats) owes at most its limit across both processes", async () => {
  const made = await runCli([
    "gateway",
    "business-key",
    "--tier",
    "partner",
    "--name",
    "shared co",
    "--credit-limit-sats",
    "1",
    "--data-dir",
    tempDir(),
    "--database-url",
    db.url,
  ]);
  expect(made.code).toBe(0);
  const key = made.stdout.trim();
  expect(key).toMatch(/^bsvapi_sk_shared_co_/);
  const id = /key id: (\S+)/.exec(made.stderr)![1]!;
  const chat = (gw: CliProcess) =>
    api(gw, "/v1/chat/completions", key, {
      model: MODEL,
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 8,
    });
  // 1 sat of credit covers no request: the 402 says how much one needs.
  const probe = (await (await chat(gws[1]!)).json()) as {
    error: { required_sats: number; amount_needed_sats: number };
  };
  expect(probe.error.amount_needed_sats).toBe(probe.error.required_sats - 1);
  // Room for two holds at once, not three; set from the shell while both gateways run.
  const limit = 3 * probe.error.required_sats - 1;
  const set = await runCli([
    "gateway",
    "business-key",
    "--set-credit-limit",
    String(limit),
    "--key-id",
    id,
    "--data-dir",
    tempDir(),
    "--database-url",
    db.url,
  ]);
  expect(set.code).toBe(0);
  const statuses = await Promise.all(
    Array.from({ length: 12 }, (_, i) =>
      chat(gws[i % 2]!).then(async (r) => {
        await r.body?.cancel();
        return r.status;
      }),
    ),
  );
  for (const s of statuses) expect([200, 402]).toContain(s);
  expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(2);
  const month = new Date().toISOString().slice(0, 7);
  const views = await Promise.all(
    gws.map(async (gw) => ({
      balance: (await (await api(gw, "/v1/balance", key)).json()) as {
        owed_msat: number;
        credit_limit_sats: number;
      },
      statement: (await (await api(gw, `/v1/account/statement?month=${month}`, key)).json()) as {
        billing: string;
        totals: { amount_due_msat: number; charged_msat: number; requests: number };
      },
    })),
  );
  const owed = views[0]!.balance.owed_msat;
  expect(owed).toBeGreaterThan(0);
  expect(owed).toBeLessThanOrEqual(limit * 1000);
  for (const v of views) {
    expect(v.balance).toMatchObject({ balance_sats: 0, owed_msat: owed, credit_limit_sats: limit });
    expect(v.statement.billing).toBe("metered");
    expect(v.statement.totals).toMatchObject({
      amount_due_msat: owed,
      charged_msat: owed,
      requests: statuses.filter((s) => s === 200).length,
    });
  }
});
