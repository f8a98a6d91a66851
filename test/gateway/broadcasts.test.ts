/**
 * Operator broadcasts: `GET /v1/broadcasts` shows what the operator published until it expires;
 * publishing and expiring need the admin token (0600 in the data dir), checked before any body
 * is read; the CLI publishes and expires against the same data dir while the gateway runs.
 */
import { statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SqliteBroadcastStore } from "../../gateway/broadcasts/index.js";
import { type RunningGateway, startGateway } from "../../gateway/index.js";
import { createBundledMint, createLightningBackend } from "../../gateway/mint/index.js";
import { silentLogger } from "../../src/shared/index.js";
import { runCli, tempDir } from "../support/cli-process.js";

let root: string;
let gw: RunningGateway;
let token: string;

beforeAll(async () => {
  root = tempDir("owlrun-broadcasts-");
  gw = await startGateway({
    dataDir: join(root, "gateway"),
    trustedMints: [],
    port: 0,
    log: silentLogger,
    payoutIntervalMs: 0,
    sweepIntervalMs: 0,
    bundledMint: await createBundledMint({
      dataDir: join(root, "mint"),
      lightning: createLightningBackend("fake", { incomingDelayMs: 20 }),
      log: silentLogger,
    }),
  });
  const out = await runCli(["gateway", "admin-token", "--data-dir", root]);
  expect(out.code).toBe(0);
  token = out.stdout.trim();
});
afterAll(async () => {
  await gw?.close();
});

const list = async () =>
  ((await (await fetch(`${gw.url}/v1/broadcasts`)).json()) as { broadcasts: any[] }).broadcasts;
const admin = (method: string, path: string, body?: unknown, auth = `Bearer ${token}`) =>
  fetch(`${gw.url}${path}`, {
    method,
    headers: { authorization: auth, "content-type": "application/json" },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });

describe("broadcasts", () => {
  it("the admin token is owlr_admin_…, kept 0600 in the gateway's data dir", () => {
    expect(token).toMatch(/^owlr_admin_[0-9a-f]{64}$/);
    expect(statSync(join(root, "gateway", "admin-token")).mode & 0o777).toBe(0o600);
  });

  it("refuses to publish without the admin token, before reading the body (a 1 MB body is still 401)", async () => {
    for (const auth of ["", "Bearer owlr_admin_nope", `Bearer ${token}x`, `Basic ${token}`]) {
      const res = await admin("POST", "/v1/admin/broadcasts", { message: "pwned" }, auth);
      expect(res.status).toBe(401);
      expect(((await res.json()) as any).error.type).toBe("invalid_key");
    }
    const big = await admin(
      "POST",
      "/v1/admin/broadcasts",
      JSON.stringify({ message: "x".repeat(1_000_000) }),
      "",
    );
    expect(big.status).toBe(401);
    expect((await admin("DELETE", "/v1/admin/broadcasts/anything", undefined, "")).status).toBe(401);
    expect((await admin("GET", "/v1/admin/broadcasts", undefined, "")).status).toBe(401);
    expect(await list()).toEqual([]);
  });

  it("publishes over HTTP, lists it, expires it; bad bodies are 400, big ones 413", async () => {
    const res = await admin("POST", "/v1/admin/broadcasts", {
      message: "Maintenance at 02:00 UTC",
      level: "warning",
      expires_in_seconds: 3600,
    });
    expect(res.status).toBe(201);
    const b = (await res.json()) as any;
    expect(b).toMatchObject({ message: "Maintenance at 02:00 UTC", level: "warning" });
    expect(Date.parse(b.expires_at) - Date.parse(b.created_at)).toBe(3_600_000);
    expect(await list()).toEqual([b]);
    expect((await admin("POST", "/v1/admin/broadcasts", { message: "" })).status).toBe(400);
    expect((await admin("POST", "/v1/admin/broadcasts", { message: "x", level: "shout" })).status).toBe(400);
    expect(
      (await admin("POST", "/v1/admin/broadcasts", { message: "x", expires_at: "2000-01-01T00:00:00Z" }))
        .status,
    ).toBe(400);
    expect((await admin("POST", "/v1/admin/broadcasts", { message: "x".repeat(20_000) })).status).toBe(413);
    const expired = await admin("DELETE", `/v1/admin/broadcasts/${b.id}`);
    expect(await expired.json()).toEqual({ id: b.id, expired: true });
    expect(await list()).toEqual([]);
    expect((await admin("DELETE", `/v1/admin/broadcasts/${b.id}`)).status).toBe(404);
  });

  it("the CLI publishes and expires while the gateway runs", async () => {
    const pub = await runCli([
      "gateway",
      "broadcast",
      "New model: qwen2.5:7b",
      "--expires-in",
      "2h",
      "--data-dir",
      root,
    ]);
    expect(pub.code).toBe(0);
    const id = pub.stdout.trim();
    const live = await list();
    expect(live.map((b) => [b.id, b.message, b.level])).toEqual([[id, "New model: qwen2.5:7b", "info"]]);
    expect(Date.parse(live[0].expires_at) - Date.parse(live[0].created_at)).toBe(7_200_000);
    const listed = await runCli(["gateway", "broadcast", "list", "--data-dir", root]);
    expect(listed.stdout).toContain(id);
    expect((await runCli(["gateway", "broadcast", "expire", id, "--data-dir", root])).code).toBe(0);
    expect(await list()).toEqual([]);
    const again = await runCli(["gateway", "broadcast", "expire", id, "--data-dir", root]);
    expect(again.code).toBe(2);
    expect((await runCli(["gateway", "broadcast", "--data-dir", root])).code).toBe(2);
  });

  it("a broadcast stops showing once its expiry passes", async () => {
    const store = SqliteBroadcastStore.open(tempDir());
    try {
      const t0 = Date.parse("2026-01-01T00:00:00Z");
      const b = await store.publish({ message: "soon over", expires_in_seconds: 60 }, t0);
      expect((await store.active(t0 + 59_999)).map((x) => x.id)).toEqual([b.id]);
      expect(await store.active(t0 + 60_000)).toEqual([]);
      expect((await store.all()).map((x) => x.id)).toEqual([b.id]);
    } finally {
      store.close();
    }
  });
});
