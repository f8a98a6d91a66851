/**
 * The node-facing HTTP side: signup (open, rate limited, closable), keys stored hashed, the shell
 * command's key usable while the gateway runs, registration checks, and WebSocket auth before upgrade.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { createProviderKey } from "../../gateway/routing/index.js";
import { register, registrationBody, startAgent } from "../support/owlrun-agent.js";
import { startGateway, type TestGateway, waitUntil } from "./harness.js";

const gateways: TestGateway[] = [];
afterAll(async () => {
  for (const g of gateways) await g.close();
});
const gateway = async (...args: Parameters<typeof startGateway>) => {
  const g = await startGateway(...args);
  gateways.push(g);
  return g;
};

/** Tries a WebSocket upgrade; the HTTP status when refused, 101 when it opened. */
function upgradeStatus(url: string, key: string): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(
      `${url.replace(/^http/, "ws")}/v1/gateway/ws?api_key=${encodeURIComponent(key)}`,
    );
    ws.once("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
    ws.once("open", () => {
      ws.terminate();
      resolve(101);
    });
    ws.once("error", () => resolve(-1));
  });
}

const post = (url: string, body: unknown, key?: string) =>
  fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });

describe("provider keys and registration", () => {
  it("signup issues owlr_prov_ keys that are stored only as sha256", async () => {
    const g = await gateway();
    const res = await post(`${g.url}/v1/gateway/signup`, {});
    expect(res.status).toBe(201);
    const { api_key } = (await res.json()) as { api_key: string };
    expect(api_key).toMatch(/^owlr_prov_[A-Za-z0-9_-]{32}$/);
    const db = new Database(join(g.dir, "routing.sqlite"), { readonly: true });
    const rows = db.prepare("SELECT key_hash FROM provider_keys").all() as { key_hash: string }[];
    db.close();
    expect(rows).toEqual([{ key_hash: createHash("sha256").update(api_key).digest("hex") }]);
    expect(await g.routing.keys.verify(api_key)).toBe(true);
    expect(await g.routing.keys.verify("owlr_prov_nope")).toBe(false);
  });

  it("signup is rate limited per address and can be closed", async () => {
    const limited = await gateway({ signupsPerHour: 2 });
    expect((await post(`${limited.url}/v1/gateway/signup`, {})).status).toBe(201);
    expect((await post(`${limited.url}/v1/gateway/signup`, {})).status).toBe(201);
    const third = await post(`${limited.url}/v1/gateway/signup`, {});
    expect(third.status).toBe(429);
    expect(Number(third.headers.get("retry-after"))).toBeGreaterThan(3000);
    expect(((await third.json()) as any).error.type).toBe("rate_limited");

    const closed = await gateway({ signupOpen: false });
    const res = await post(`${closed.url}/v1/gateway/signup`, {});
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual({
      error: { message: expect.stringMatching(/closed/), type: "signup_closed", code: 403 },
    });
    // The operator still mints keys from the shell, into the running gateway's data dir.
    const key = await createProviderKey(closed.dir);
    const a = await closed.agent({ models: ["m"] }, { apiKey: key });
    expect(a.connected()).toBe(true);
    expect(closed.routing.dispatcher.models()).toEqual([{ model: "m", nodes: 1 }]);
  });

  it("registration checks the key, the body, the Lightning address and node ownership", async () => {
    const g = await gateway();
    const key = await g.routing.keys.create();
    const url = `${g.url}/v1/gateway/register`;
    const body = registrationBody(key, "node-a", ["qwen2.5:0.5b"], "alice@example.com");
    const status = async (r: Promise<Response>) => {
      const res = await r;
      const json = (await res.json()) as any;
      if (res.status >= 400) expect(Object.keys(json.error).sort()).toEqual(["code", "message", "type"]);
      return res.status;
    };
    expect(await status(post(url, body))).toBe(401);
    expect(await status(post(url, body, "owlr_prov_unknown"))).toBe(401);
    expect(await status(post(url, { ...body, api_key: await g.routing.keys.create() }, key))).toBe(403);
    expect(await status(post(url, { ...body, lightning_address: "alice-at-example" }, key))).toBe(400);
    expect(await status(post(url, { ...body, redeem_threshold_sats: 10 }, key))).toBe(400);
    expect(await status(post(url, { ...body, models: "all" }, key))).toBe(400);
    expect(await status(post(url, "{not json", key))).toBe(400);
    expect(await status(post(url, body, key))).toBe(201);
    expect(await g.routing.node("node-a")).toMatchObject({
      online: false,
      models: ["qwen2.5:0.5b"],
      lightningAddress: "alice@example.com",
      version: "owlrun-scripted/1.0.0",
    });
    // Earnings are booked to node ids: another key cannot take this one over.
    const thief = await g.routing.keys.create();
    const res = await register(g.url, thief, "node-a", ["qwen2.5:0.5b"], "mallory@example.com");
    expect(res.status).toBe(403);
    expect((await g.routing.node("node-a"))?.lightningAddress).toBe("alice@example.com");
  });

  it("the WebSocket refuses unknown and unregistered keys before the upgrade", async () => {
    const g = await gateway();
    expect(await upgradeStatus(g.url, "owlr_prov_unknown")).toBe(403);
    const key = await g.routing.keys.create();
    expect(await upgradeStatus(g.url, key)).toBe(403); // not registered yet
    expect((await register(g.url, key, "node-ws", ["m"])).status).toBe(201);
    expect(await upgradeStatus(g.url, key)).toBe(101);
  });

  it("re-registering while connected updates the node's models; revoking a key drops its node", async () => {
    const g = await gateway();
    const a = await g.agent({ models: ["m1"] });
    expect(g.routing.dispatcher.models().map((m) => m.model)).toEqual(["m1"]);
    expect((await register(g.url, a.apiKey, a.nodeId, ["m1", "m2"])).status).toBe(201);
    expect(g.routing.dispatcher.models().map((m) => m.model)).toEqual(["m1", "m2"]);
    expect(await g.routing.keys.revoke(a.apiKey)).toBe(true);
    await waitUntil(() => !a.connected(), 2_000, "revoked node disconnected");
    expect(g.routing.dispatcher.nodesOnline()).toBe(0);
    await expect(startAgent(g.url, { models: ["m1"] }, { apiKey: a.apiKey })).rejects.toThrow(/401/);
  });
});
