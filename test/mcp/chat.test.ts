/**
 * `chat` end to end: `owlrun-mcp gateway` (bundled mint) as a child process, providers speaking
 * the Owlrun node protocol, and the MCP server over Streamable HTTP (in-process) and stdio (child
 * process). The wallet tops up at the gateway's own mint (the default), pays each request with
 * X-Cashu, and gets the change back; a refused request is refunded; and a kill -9 of the MCP
 * process in the middle of a paid chat loses nothing: after a restart the balance is exact.
 */
import { join } from "node:path";
import Database from "better-sqlite3";
import { Client, LOG_LEVEL_META_KEY } from "@modelcontextprotocol/client";
import { LoggingMessageNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningMcpHttp, startMcpHttp } from "../../src/mcp/index.js";
import { silentLogger } from "../../src/shared/index.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";
import { type Agent, startAgent } from "../support/owlrun-agent.js";
import {
  callOk,
  callText,
  connect,
  connectV1,
  type Connected,
  outcome,
  sleep,
  stdioParams,
  waitFor,
} from "./harness.js";

const MODEL = "owlrun-test-scripted:tiny";
const SLOW = "owlrun-test-slow:tiny";
const BUSY = "owlrun-test-busy:tiny";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let gw: CliProcess;
let agents: Agent[] = [];
let mcp: RunningMcpHttp;
let c: Connected;

async function fund(client: Client, sats: number) {
  const top = (await client.callTool({ name: "topup", arguments: { amount_sats: sats } }))
    .structuredContent as any;
  expect(top.mint).toBe(`${gw.url}/mint`); // the gateway's first mint, from /v1/info
  const r = outcome(
    await client.callTool({
      name: "topup_status",
      arguments: { quote: top.quote, wait: true, timeout_seconds: 20 },
    }),
  );
  expect(r.structured).toMatchObject({ state: "claimed" });
}

describe("chat paid with ecash", () => {
  beforeAll(async () => {
    gw = await startCli(["gateway", "--port", "0", "--data-dir", tempDir(), "--fake-delay-ms", "20"]);
    agents = await Promise.all([
      startAgent(gw.url, { models: [MODEL], reply: ["The", " answer", " is", " 42", "."] }),
      startAgent(gw.url, {
        models: [SLOW],
        reply: Array.from({ length: 20 }, (_, i) => ` w${i}`),
        chunkDelayMs: 300,
      }),
      startAgent(gw.url, { models: [BUSY], rejectWith: "busy" }),
    ]);
    await waitFor(async () => {
      const m = (await (await fetch(`${gw.url}/v1/models`)).json()) as { data: { id: string }[] };
      return m.data.length >= 3 || undefined;
    });
    mcp = await startMcpHttp({
      gatewayUrl: gw.url,
      dataDir: tempDir("owlrun-chat-"),
      port: 0,
      log: silentLogger,
    });
    c = await connect(mcp);
  }, 60_000);

  afterAll(async () => {
    await c?.close();
    await mcp?.close();
    await Promise.all(agents.map((a) => a.close()));
    await gw?.stop();
  });

  it("lists the models online with prices in sats", async () => {
    const r = await callOk(c.client, "models");
    expect(r.gateway).toBe(gw.url);
    expect(r.models.map((m: { id: string }) => m.id).sort()).toEqual([BUSY, MODEL, SLOW].sort());
    for (const m of r.models) {
      expect(m.input_sats_per_1m).toBeGreaterThan(0);
      expect(m.output_sats_per_1m).toBeGreaterThan(0);
      expect(m.providers).toBe(1);
    }
  });

  it("pays one chat with ecash, gets the answer and the change, and reports the cost", async () => {
    await fund(c.client, 200);
    const r = await callOk(c.client, "chat", { prompt: "What is the answer?", model: MODEL, max_tokens: 20 });
    expect(r).toMatchObject({
      answer: "The answer is 42.",
      model: MODEL,
      completion_tokens: 5,
      cost_sats: 2, // tiny job: the 2-sat floor
      paid_sats: 3, // the estimate (2) plus the margin
      change_sats: 1,
      balance_sats: 198,
    });
    expect(r.request_id).toMatch(UUID);
    const text = await callText(c.client, "chat", { prompt: "again", model: MODEL });
    expect(text.text).toMatch(
      /^The answer is 42\.\n\n\[owlrun-test-scripted:tiny: cost 2 sats \(paid 3, 1 sat change\); balance 196 sats\]$/,
    );
    expect(await callOk(c.client, "balance")).toMatchObject({ total_sats: 196, open_requests: 0 });
  });

  it("tells clients what it paid through MCP logging, at the level each chose, in both protocol eras", async () => {
    // 2025 era (the 1.x SDK client): logging/setLevel holds for the session.
    const v1 = await connectV1(mcp);
    const lines: { level: string; data: any }[] = [];
    v1.client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void lines.push(n.params));
    const paid = () => lines.filter((l) => l.data?.message === "paid for a chat");
    try {
      await v1.client.setLoggingLevel("info");
      await v1.client.callTool({ name: "chat", arguments: { prompt: "log this", model: MODEL } });
      expect(paid()).toEqual([
        {
          level: "info",
          logger: "mcp:tools",
          data: expect.objectContaining({ model: MODEL, cost_sats: 2, change_sats: 1 }),
        },
      ]);
      await v1.client.setLoggingLevel("warning");
      await v1.client.callTool({ name: "chat", arguments: { prompt: "quiet", model: MODEL } });
      expect(paid()).toHaveLength(1);
    } finally {
      await v1.close();
    }
    // Servers built for one request or one closed session stop listening (no leak per call).
    expect(mcp.runtime.logs.size).toBeLessThanOrEqual(1);
    // 2026-07-28 era: the level travels with each request.
    const modern: any[] = [];
    c.client.setNotificationHandler("notifications/message", (n) => void modern.push(n.params));
    await c.client.callTool({
      name: "chat",
      arguments: { prompt: "log this too", model: MODEL },
      _meta: { [LOG_LEVEL_META_KEY]: "info" },
    });
    expect(modern.filter((l) => l.data?.message === "paid for a chat")).toHaveLength(1);
    await callOk(c.client, "chat", { prompt: "no level asked", model: MODEL });
    expect(modern.filter((l) => l.data?.message === "paid for a chat")).toHaveLength(1);
    expect(await callOk(c.client, "balance")).toMatchObject({ total_sats: 188, open_requests: 0 });
  });

  it("gets the whole token back when no provider takes the job, and pays nothing for an unknown model", async () => {
    const busy = await callText(c.client, "chat", { prompt: "hello", model: BUSY });
    expect(busy.isError).toBe(true);
    expect(busy.text).toContain("the gateway refused");
    expect(busy.text).toContain("3 sats of change came back");
    const unknown = await callText(c.client, "chat", { prompt: "hello", model: "nope:1b" });
    expect(unknown.isError).toBe(true);
    expect(unknown.text).toContain("model nope:1b is not online; available:");
    expect(await callOk(c.client, "balance")).toMatchObject({ total_sats: 188, open_requests: 0 });
  });

  it("over stdio, survives kill -9 in the middle of a paid chat: after a restart the balance is exact", async () => {
    const dir = tempDir("owlrun-chat-stdio-");
    const args = ["--data-dir", dir, "--gateway", gw.url];
    const first = new Client({ name: "t", version: "0" }, { versionNegotiation: { mode: "auto" } });
    const transport = new StdioClientTransport(stdioParams(args));
    await first.connect(transport);
    await fund(first, 100);
    expect(
      outcome(await first.callTool({ name: "chat", arguments: { prompt: "hi", model: MODEL } })).structured,
    ).toMatchObject({
      answer: "The answer is 42.",
      balance_sats: 98,
    });

    // A slow answer (20 words, 300 ms apart): kill the MCP process while it streams in.
    const pending = first
      .callTool({ name: "chat", arguments: { prompt: "tell me a long story", model: SLOW } })
      .catch((err: unknown) => err);
    const db = new Database(join(dir, "wallet", "wallet.sqlite"), { readonly: true, fileMustExist: true });
    const open = await waitFor(
      () =>
        db.prepare("SELECT id, amount FROM requests WHERE state = 'sent'").get() as
          { id: string; amount: number } | undefined,
      10_000,
      "the journaled request",
    );
    db.close();
    const slow = agents[1]!;
    await waitFor(() => slow.bodies.length > 0 || undefined, 10_000, "the provider to start the job");
    await sleep(700); // a few words delivered
    process.kill(transport.pid!, "SIGKILL");
    await pending;

    // The gateway notices the dropped client, settles, and keeps the change under the request id.
    const change = await waitFor(
      async () => {
        const res = await fetch(`${gw.url}/v1/cashu/change/${open.id}`);
        return res.status === 200 ? ((await res.json()) as { change_sats: number }) : undefined;
      },
      15_000,
      "the stored change",
    );
    const charged = open.amount - change.change_sats;
    expect(charged).toBeGreaterThanOrEqual(0);

    const second = new Client({ name: "t", version: "0" }, { versionNegotiation: { mode: "auto" } });
    await second.connect(new StdioClientTransport(stdioParams(args)));
    const settled = await waitFor(
      async () => {
        const b = outcome(await second.callTool({ name: "balance", arguments: {} })).structured;
        return b.open_requests === 0 ? b : undefined;
      },
      15_000,
      "the open request to settle",
    );
    expect(settled.total_sats).toBe(98 - charged);
    await second.close();
  });
});
