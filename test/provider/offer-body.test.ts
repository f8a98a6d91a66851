/**
 * The job body in the offer (`inline_job_body`, our extension to the Owlrun protocol): a node that
 * registered it gets the body in `job` and starts without the HTTP pull; an Owlrun agent that did
 * not still gets the plain offer and pulls; a body too large for a frame is pulled as before.
 */
import { createServer } from "node:http";
import express from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRouting, type DispatchRequest } from "../../gateway/routing/index.js";
import {
  type Backend,
  createEmbeddedBackend,
  ensureTestModels,
  ProviderNode,
  SCRIPTED_ANSWER,
  SCRIPTED_MODEL_ID,
} from "../../provider/index.js";
import { closeServer, listen, silentLogger } from "../../src/shared/index.js";
import { tempDir } from "../support/cli-process.js";
import { startAgent } from "../support/owlrun-agent.js";
import { startPaidGateway } from "../support/paid-gateway.js";

let backend: Backend;
beforeAll(async () => {
  backend = await createEmbeddedBackend({ models: ensureTestModels(tempDir()), log: silentLogger });
}, 60_000);
afterAll(async () => {
  await backend?.close();
});

/** A gateway's routing on loopback that counts the body pulls it answers. */
async function gateway() {
  const routing = createRouting({ dataDir: tempDir(), log: silentLogger });
  const pulls: string[] = [];
  const app = express();
  app.use((req, _res, next) => {
    if (req.path.endsWith("/proxy/request")) pulls.push(req.path);
    next();
  });
  app.use(routing.router);
  const server = createServer(app);
  const detach = routing.attachWebSocket(server);
  const url = await listen(server, "127.0.0.1", 0);
  return {
    url,
    routing,
    pulls,
    async close() {
      detach();
      await closeServer(server);
      await routing.close();
    },
  };
}

async function until(cond: () => boolean | Promise<boolean>, ms = 5000) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}

let n = 0;
const request = (model: string, maxTokens = 64, extra: Record<string, unknown> = {}): DispatchRequest => ({
  jobId: `buyer-${++n}`,
  model,
  kind: "chat",
  body: { model, messages: [{ role: "user", content: "hi" }], max_tokens: maxTokens, ...extra },
  maxTokens,
  signal: new AbortController().signal,
});

const textOf = async (
  job: Awaited<ReturnType<ReturnType<typeof createRouting>["dispatcher"]["dispatch"]>>,
) => {
  let text = "";
  for await (const c of job.chunks) text += c.choices?.map((x) => x.delta?.content ?? "").join("") ?? "";
  return text;
};

describe("the job body in the offer", () => {
  it("goes to a node that registered inline_job_body, which serves without pulling; oversized bodies are pulled", async () => {
    const gw = await gateway();
    const node = new ProviderNode({
      gateway: gw.url,
      apiKey: await gw.routing.keys.create(),
      nodeId: "node-inline",
      backend,
      version: "test",
      log: silentLogger,
    });
    try {
      await node.start();
      await until(() => gw.routing.dispatcher.models().length === 2);
      const job = await gw.routing.dispatcher.dispatch(request(SCRIPTED_MODEL_ID));
      expect(await textOf(job)).toBe(SCRIPTED_ANSWER);
      expect((await job.outcome).status).toBe("completed");
      expect(gw.pulls).toEqual([]);

      // Over the inline limit (256 Ki characters of JSON): the offer comes without it, the node pulls.
      const big = await gw.routing.dispatcher.dispatch(
        request(SCRIPTED_MODEL_ID, 64, { metadata: { note: "x".repeat(300_000) } }),
      );
      expect(await textOf(big)).toBe(SCRIPTED_ANSWER);
      expect((await big.outcome).status).toBe("completed");
      expect(gw.pulls).toHaveLength(1);
    } finally {
      await node.close();
      await gw.close();
    }
  }, 30_000);

  it("is not sent to an Owlrun agent, which pulls the body as the protocol says", async () => {
    const gw = await gateway();
    const agent = await startAgent(gw.url, { models: ["owl:1b"], reply: ["Hello", " there"] });
    try {
      await until(async () => (await gw.routing.node(agent.nodeId))?.online === true);
      const job = await gw.routing.dispatcher.dispatch(request("owl:1b"));
      expect(await textOf(job)).toBe("Hello there");
      expect(agent.offers).toHaveLength(1);
      expect(agent.offers[0]).not.toHaveProperty("body");
      expect(gw.pulls).toHaveLength(1);
    } finally {
      await agent.close();
      await gw.close();
    }
  }, 30_000);
});

describe("the job body in the offer, with failover", () => {
  it("goes to every node offered the job: one that rejects, then the one that serves; the buyer pays once", async () => {
    const gw = await startPaidGateway(500);
    try {
      // Whichever node is offered the job first rejects it; the other serves.
      let offered = 0;
      const job = () =>
        ++offered === 1
          ? { action: "reject" as const, rejectReason: "busy" }
          : { words: ["Hello", " there"] };
      const nodes = [
        await gw.agent({ models: ["owl:1b"], inlineJobBody: true, job }),
        await gw.agent({ models: ["owl:1b"], inlineJobBody: true, job }),
      ];
      const res = await fetch(`${gw.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-cashu": await gw.token(100) },
        body: JSON.stringify({ model: "owl:1b", messages: [{ role: "user", content: "hi" }] }),
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { usage: { cost: { sats: number } } };
      expect(offered).toBe(2);
      expect(nodes.map((n) => n.offers.length)).toEqual([1, 1]);
      for (const offer of nodes.flatMap((n) => n.offers))
        expect((offer as { body?: { messages?: unknown } }).body?.messages).toEqual([
          { role: "user", content: "hi" },
        ]);
      expect(nodes.flatMap((n) => n.bodies)).toHaveLength(1);
      // Charged once: what was kept and the change make the token, exactly.
      const change = await gw.receive(res.headers.get("x-cashu-change")!);
      expect(body.usage.cost.sats).toBeGreaterThan(0);
      expect(change + body.usage.cost.sats).toBe(100);
    } finally {
      await gw.close();
    }
  }, 30_000);
});

describe("measuring the body for the offer", () => {
  it("serialises it once per job, not once per offer: a failover adds only the offer frame", async () => {
    const gw = await gateway();
    let offered = 0;
    const job = () =>
      ++offered === 1 ? { action: "reject" as const, rejectReason: "busy" } : { words: ["Hello", " there"] };
    const nodes = [
      await startAgent(gw.url, { models: ["owl:1b"], inlineJobBody: true, job }),
      await startAgent(gw.url, { models: ["owl:1b"], inlineJobBody: true, job }),
    ];
    try {
      await until(() => gw.routing.dispatcher.nodesOnline() === 2);
      // Counts every JSON serialisation of the body (the field is kept by reference in the node's body).
      let serialised = 0;
      const counted = {
        toJSON() {
          serialised++;
          return { note: "counted" };
        },
      };
      const handle = await gw.routing.dispatcher.dispatch(request("owl:1b", 64, { metadata: counted }));
      expect(await textOf(handle)).toBe("Hello there");
      expect(offered).toBe(2);
      // One to measure it against MAX_INLINE_BODY_CHARS, then one in each offer frame sent.
      expect(serialised).toBe(1 + 2);
    } finally {
      for (const n of nodes) await n.close();
      await gw.close();
    }
  }, 30_000);
});
