/**
 * The provider node against the gateway's real routing (gateway/routing) over a real WebSocket on
 * loopback, serving from the embedded backend: registration, honest usage the gateway does not
 * dispute, cancel when the buyer goes away, drain, and reconnect after the gateway restarts.
 * The node itself never imports the gateway; only this test wires both.
 */
import { createServer, type Server } from "node:http";
import express from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRouting, type DispatchRequest } from "../../gateway/routing/index.js";
import {
  type Backend,
  createEmbeddedBackend,
  ensureTestModels,
  ProviderNode,
  RANDOM_MODEL_ID,
  SCRIPTED_ANSWER,
  SCRIPTED_MODEL_ID,
} from "../../provider/index.js";
import { closeServer, listen, silentLogger } from "../../src/shared/index.js";
import { tempDir } from "../support/cli-process.js";

let backend: Backend;
beforeAll(async () => {
  backend = await createEmbeddedBackend({ models: ensureTestModels(tempDir()), log: silentLogger });
}, 60_000);
afterAll(async () => {
  await backend?.close();
});

async function gateway(dataDir: string, port = 0) {
  const routing = createRouting({ dataDir, log: silentLogger });
  const app = express();
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

async function until(cond: () => boolean, ms = 5000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}

let n = 0;
const request = (model: string, maxTokens = 64, signal = new AbortController().signal): DispatchRequest => ({
  jobId: `buyer-${++n}`,
  model,
  kind: "chat",
  body: { model, messages: [{ role: "user", content: "hi" }], max_tokens: maxTokens },
  maxTokens,
  signal,
});

describe("provider node ⇄ gateway routing", () => {
  it("registers, serves with usage the gateway agrees with, stops on cancel, reconnects after a restart, drains", async () => {
    const dir = tempDir();
    let gw = await gateway(dir);
    const key = await gw.routing.keys.create();
    const node = new ProviderNode({
      gateway: gw.url,
      apiKey: key,
      nodeId: "node-r",
      backend,
      version: "test",
      minBackoffMs: 50,
      maxBackoffMs: 200,
      log: silentLogger,
    });
    try {
      await node.start();
      await until(() => gw.routing.dispatcher.models().length === 2);
      expect(gw.routing.dispatcher.models().map((m) => m.model)).toEqual(
        [RANDOM_MODEL_ID, SCRIPTED_MODEL_ID].sort(),
      );

      const job = await gw.routing.dispatcher.dispatch(request(SCRIPTED_MODEL_ID));
      let text = "";
      for await (const c of job.chunks) text += c.choices?.map((x) => x.delta?.content ?? "").join("") ?? "";
      const outcome = await job.outcome;
      expect(text).toBe(SCRIPTED_ANSWER);
      expect(outcome.status).toBe("completed");
      expect(outcome.reportedUsage?.completionTokens).toBe(6);
      expect(outcome.usageDisputed).toBe(false);

      // The random model with its gibberish (byte tokens) is not disputed either.
      const gib = await gw.routing.dispatcher.dispatch(request(RANDOM_MODEL_ID, 300));
      for await (const _ of gib.chunks) void _;
      expect((await gib.outcome).usageDisputed).toBe(false);

      // The buyer goes away: the gateway sends cancel and the node stops generating.
      const abort = new AbortController();
      const long = await gw.routing.dispatcher.dispatch(request(RANDOM_MODEL_ID, 900, abort.signal));
      let got = 0;
      for await (const _ of long.chunks) if (++got === 3) abort.abort();
      expect((await long.outcome).status).toBe("cancelled");
      await until(() => node.stats.cancelled === 1);
      expect(node.stats.tokens).toBeLessThan(6 + 300 + 300);

      // The gateway restarts on the same port and data dir: the node comes back by itself.
      const port = Number(new URL(gw.url).port);
      await gw.close();
      await until(() => !node.connected);
      gw = await gateway(dir, port);
      await until(() => node.connected && gw.routing.dispatcher.nodesOnline() === 1, 10_000);
      const again = await gw.routing.dispatcher.dispatch(request(SCRIPTED_MODEL_ID));
      for await (const _ of again.chunks) void _;
      expect((await again.outcome).status).toBe("completed");

      // Drain: the node takes no new jobs.
      expect(gw.routing.drain("node-r")).toBe(true);
      await until(() => node.isDraining);
      await expect(gw.routing.dispatcher.dispatch(request(SCRIPTED_MODEL_ID))).rejects.toMatchObject({
        name: "NoProviderError",
      });
    } finally {
      await node.close();
      await gw.close();
    }
  }, 30_000);

  it("bills a streamed job the completion tokens the node's backend generated, byte tokens included", async () => {
    // The random model streams mostly byte tokens; node-llama-cpp can only emit whole UTF-8
    // characters, so several tokens arrive as one delta. The gateway used to count one token per
    // delta, dispute the honest report and bill 56 of 100 tokens for the first prompt below.
    const gw = await gateway(tempDir());
    const node = new ProviderNode({
      gateway: gw.url,
      apiKey: await gw.routing.keys.create(),
      nodeId: "node-b",
      backend,
      version: "test",
      log: silentLogger,
    });
    try {
      await node.start();
      await until(() => gw.routing.dispatcher.models().length === 2);
      let deltasBelowTokens = false;
      for (let i = 0; i < 3; i++) {
        const body = {
          model: RANDOM_MODEL_ID,
          messages: [{ role: "user", content: `Tell me story number ${i} about owls.` }],
          max_tokens: 100,
          temperature: 0,
        };
        // What the backend generates for this body, asked directly (temperature 0: deterministic).
        let generated = -1;
        for await (const c of backend.chat(body, new AbortController().signal)) {
          if (c.usage) generated = c.usage.completion_tokens;
        }
        const before = node.stats.tokens;
        const job = await gw.routing.dispatcher.dispatch({
          jobId: `billed-${i}`,
          model: RANDOM_MODEL_ID,
          kind: "chat",
          body,
          maxTokens: 100,
          signal: new AbortController().signal,
        });
        for await (const _ of job.chunks) void _;
        const outcome = await job.outcome;
        await until(() => node.stats.tokens > before);
        expect(outcome.status).toBe("completed");
        expect(generated).toBeGreaterThan(90);
        expect(node.stats.tokens - before).toBe(generated);
        expect(outcome.billableUsage.completionTokens).toBe(generated);
        // The prompt as the backend's chat template renders it is billed as reported, not clipped.
        expect(outcome.reportedUsage!.promptTokens).toBeGreaterThan(50);
        expect(outcome.billableUsage.promptTokens).toBe(outcome.reportedUsage!.promptTokens);
        expect(outcome.usageDisputed).toBe(false);
        if (outcome.countedCompletionTokens < generated) deltasBelowTokens = true;
      }
      // The case this guards: fewer deltas than tokens reached the gateway.
      expect(deltasBelowTokens).toBe(true);
    } finally {
      await node.close();
      await gw.close();
    }
  }, 30_000);
});
