/**
 * The provider node over a real WebSocket on loopback: with the gateway's routing and the embedded
 * backend (registration, jobs, cancel, drain, reconnect after a gateway restart), and with a
 * scripted gateway for what a good gateway never sends (unknown models, garbage frames).
 */
import { createServer, type Server } from "node:http";
import express from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRouting } from "../../gateway/routing/index.js";
import { createEmbeddedBackend } from "../../provider/backends/embedded.js";
import type { Backend } from "../../provider/backends/types.js";
import {
  ensureTestModels,
  RANDOM_MODEL_ID,
  SCRIPTED_ANSWER,
  SCRIPTED_MODEL_ID,
} from "../../provider/index.js";
import { ProviderNode } from "../../provider/node.js";
import { closeServer, listen, silentLogger } from "../../src/shared/index.js";
import { tempDir } from "../support/cli-process.js";
import { startFakeGateway } from "../support/fake-gateway.js";

let backend: Backend;
beforeAll(async () => {
  backend = await createEmbeddedBackend({ models: ensureTestModels(tempDir()), log: silentLogger });
}, 60_000);
afterAll(async () => {
  await backend.close();
});

async function gateway(dir: string, port = 0) {
  const routing = createRouting({ dataDir: dir, log: silentLogger });
  const app = express();
  app.use(express.json());
  app.use(routing.router);
  const server: Server = createServer(app);
  const detach = routing.attachWebSocket(server);
  const url = await listen(server, "127.0.0.1", port);
  return {
    url,
    routing,
    async close() {
      detach();
      await closeServer(server);
      await routing.close();
    },
  };
}

function node(url: string, apiKey: string, nodeId = "node-a") {
  return new ProviderNode({
    gateway: url,
    apiKey,
    nodeId,
    backend,
    version: "test",
    log: silentLogger,
    minBackoffMs: 50,
    maxBackoffMs: 200,
  });
}

async function waitUntil(cond: () => boolean, ms = 5000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}

const req = (model: string, signal = new AbortController().signal, maxTokens = 64) => ({
  jobId: "t",
  model,
  kind: "chat" as const,
  body: { model, messages: [{ role: "user", content: "hi" }] },
  maxTokens,
  signal,
});

describe("provider node ⇄ gateway routing", () => {
  it("registers its models, serves jobs with honest usage, stops on cancel, honours drain, reconnects after a restart", async () => {
    const dir = tempDir();
    let gw = await gateway(dir);
    const key = gw.routing.keys.create();
    const n = node(gw.url, key);
    await n.start();
    await waitUntil(() => gw.routing.dispatcher.models().length === 2);
    expect(
      gw.routing.dispatcher
        .models()
        .map((m) => m.model)
        .sort(),
    ).toEqual([RANDOM_MODEL_ID, SCRIPTED_MODEL_ID].sort());

    const job = await gw.routing.dispatcher.dispatch(req(SCRIPTED_MODEL_ID));
    let text = "";
    for await (const c of job.chunks) text += c.choices?.map((x) => x.delta?.content ?? "").join("") ?? "";
    const outcome = await job.outcome;
    expect(text).toBe(SCRIPTED_ANSWER);
    expect(outcome.reportedUsage?.completionTokens).toBe(6);
    expect(outcome.usageDisputed).toBe(false);

    // Cancel: the buyer goes away; the node stops generating (the random model would run to 4000).
    const abort = new AbortController();
    const long = await gw.routing.dispatcher.dispatch(req(RANDOM_MODEL_ID, abort.signal, 4000));
    let got = 0;
    for await (const _ of long.chunks) if (++got === 3) abort.abort();
    expect((await long.outcome).status).toBe("cancelled");
    await waitUntil(() => n.stats.jobs === 2);
    expect(n.stats.tokens).toBeLessThan(500);

    // Restart the gateway on the same port and data dir: the node comes back by itself.
    const port = Number(new URL(gw.url).port);
    await gw.close();
    await waitUntil(() => !n.connected);
    gw = await gateway(dir, port);
    await waitUntil(() => n.connected && gw.routing.dispatcher.nodesOnline() === 1, 10_000);
    const again = await gw.routing.dispatcher.dispatch(req(SCRIPTED_MODEL_ID));
    for await (const _ of again.chunks) void _;
    expect((await again.outcome).status).toBe("completed");

    // Drain: no new jobs.
    expect(gw.routing.drain("node-a")).toBe(true);
    await expect(gw.routing.dispatcher.dispatch(req(SCRIPTED_MODEL_ID))).rejects.toMatchObject({
      reason: "no_providers",
    });
    await n.close();
    await gw.close();
  }, 60_000);
});

describe("provider node ⇄ scripted gateway", () => {
  it("rejects models it does not serve, answers pings, ignores unknown and garbage frames", async () => {
    const fake = await startFakeGateway();
    const n = node(fake.url, "owlr_prov_fake", "node-b");
    await n.start();
    expect(fake.registrations[0]).toMatchObject({
      node_id: "node-b",
      api_key: "owlr_prov_fake",
      models: expect.arrayContaining([SCRIPTED_MODEL_ID]),
    });
    await fake.waitFor((m) => m.type === "heartbeat");
    fake.send("{garbage");
    fake.send({ type: "some_future_message", x: 1 });
    fake.send({
      type: "job",
      job_id: "j-unknown",
      model: "llama3.1:8b",
      vram_required_mb: 0,
      buyer_region: "",
      free_tier: false,
    });
    expect(await fake.waitFor((m) => m.job_id === "j-unknown")).toEqual({
      type: "reject",
      job_id: "j-unknown",
      reason: "model_not_loaded",
    });
    fake.send({ type: "ping" });
    await fake.waitFor((m) => m.type === "pong");
    fake.send({
      type: "job",
      job_id: "j-ok",
      model: SCRIPTED_MODEL_ID,
      vram_required_mb: 0,
      buyer_region: "",
      free_tier: false,
    });
    await fake.waitFor((m) => m.type === "proxy_done" && m.job_id === "j-ok");
    expect(fake.received.find((m) => m.job_id === "j-ok")).toEqual({ type: "accept", job_id: "j-ok" });
    const sse = fake.received
      .filter((m) => m.type === "proxy_chunk" && m.job_id === "j-ok")
      .map((m) => m.data)
      .join("");
    expect(sse).toContain('"content":"Hello"');
    expect(sse.trim().endsWith("data: [DONE]")).toBe(true);
    expect(n.connected).toBe(true);
    fake.send({ type: "drain" });
    fake.send({ type: "job", job_id: "j-drained", model: SCRIPTED_MODEL_ID });
    expect(await fake.waitFor((m) => m.job_id === "j-drained")).toEqual({
      type: "reject",
      job_id: "j-drained",
      reason: "draining",
    });
    await n.close();
    await fake.close();
  });
});
