/**
 * A small gateway for routing tests: express + an HTTP server on 127.0.0.1:0 hosting createRouting,
 * plus helpers to build dispatch requests and read a job's stream.
 */
import { mkdtempSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import express from "express";
import {
  createRouting,
  type DispatchRequest,
  type JobHandle,
  type Routing,
  type RoutingOptions,
} from "../../gateway/routing/index.js";
import { closeServer, listen, silentLogger } from "../../src/shared/index.js";
import { type AgentScript, type OwlrunAgent, startAgent } from "../support/owlrun-agent.js";

export interface TestGateway {
  url: string;
  dir: string;
  routing: Routing;
  server: Server;
  /** starts a scripted node on this gateway and waits until the registry lists it */
  agent(script: AgentScript, opts?: { apiKey?: string; nodeId?: string }): Promise<OwlrunAgent>;
  close(): Promise<void>;
}

export const tempDir = () => mkdtempSync(join(tmpdir(), "owlrun-routing-"));
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startGateway(
  opts: Partial<RoutingOptions> = {},
  dir = tempDir(),
  port = 0,
): Promise<TestGateway> {
  const routing = createRouting({
    dataDir: dir,
    log: silentLogger,
    acceptTimeoutMs: 300,
    firstByteTimeoutMs: 1_500,
    signupsPerHour: 1_000,
    ...opts,
  });
  const app = express();
  app.use(routing.router); // parses its own JSON bodies

  const server = createServer(app);
  const detach = routing.attachWebSocket(server);
  const url = await listen(server, "127.0.0.1", port);
  const agents: OwlrunAgent[] = [];
  let closed = false;
  return {
    url,
    dir,
    routing,
    server,
    async agent(script, agentOpts) {
      const a = await startAgent(url, script, agentOpts);
      agents.push(a);
      await waitUntil(
        async () => (await routing.node(a.nodeId))?.online === true,
        2_000,
        `${a.nodeId} online`,
      );
      return a;
    },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all(agents.map((a) => a.close()));
      detach();
      await closeServer(server);
      await routing.close();
    },
  };
}

export async function waitUntil(
  pred: () => boolean | Promise<boolean>,
  ms = 3_000,
  what = "condition",
): Promise<void> {
  const until = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

let seq = 0;
export function request(model: string, extra: Partial<DispatchRequest> = {}): DispatchRequest {
  return {
    jobId: `00000000-0000-4000-8000-${String(++seq).padStart(12, "0")}`,
    model,
    kind: "chat",
    body: { model, messages: [{ role: "user", content: "Say hello." }] },
    maxTokens: 100,
    signal: new AbortController().signal,
    ...extra,
  };
}

/** Reads the whole stream; returns the content text. */
export async function text(job: JobHandle): Promise<string> {
  let out = "";
  for await (const c of job.chunks)
    out += (c.choices ?? []).map((x) => x.delta?.content ?? x.text ?? "").join("");
  return out;
}
