/**
 * Issue 15's service and door attacks replayed against one gateway (child process, bundled mint),
 * a scripted provider and `owlrun-mcp http`, all on loopback, while a paying client keeps using
 * the gateway: an unpaid-challenge flood, market deliveries from strangers, web pages spoofing
 * origins on MCP HTTP, a payout address pointing at the gateway's own machine, and a leaked change
 * id. Then every sat is accounted for: the ledger balances with nothing open, its ecash is exactly
 * the gateway wallet's proofs (all UNSPENT at the mint, none in limbo), the client's spend equals
 * what the gateway charged, and minted = purses + MCP wallet + gateway ecash.
 * The money attacks of items 1–4 (rogue provider with free keys, request-id collisions, mid-stream
 * failure, CJK overcharge) are replayed the same way, with the same books check, in
 * money-attacks.test.ts; item 5 (price fallback) lives in test/gateway/price-unavailable.test.ts.
 */
import { request } from "node:http";
import { createServer as createTcpServer, type AddressInfo, type Server } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";
import { expectBooksClosed, Purse, settledGatewayBooks, sumAccounts } from "../support/money.js";
import { type Agent, startAgent } from "../support/owlrun-agent.js";
import { postJson } from "../support/payments.js";
import { callOk, connect, printedMcpToken, rawRequest, waitFor } from "../mcp/harness.js";

const MODEL = "attack-ok:tiny";
const CHALLENGES_PER_MINUTE = 20;
const chat = { model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 8 };

let dir: string;
let gw: CliProcess;
let mcp: CliProcess;
let mcpToken: string;
let mintUrl: string;
let agent: Agent;
let client: Purse;
let internal: Server;
let internalConnections = 0;
/** sats the gateway charged the client (paid − change) */
let charged = 0;
/** sats the client gave the MCP wallet */
let mcpFunded = 0;

beforeAll(async () => {
  dir = tempDir("owlrun-attacks-");
  gw = await startCli([
    "gateway",
    "--port",
    "0",
    "--data-dir",
    dir,
    "--fake-delay-ms",
    "20",
    "--challenges-per-minute",
    String(CHALLENGES_PER_MINUTE),
  ]);
  mintUrl = `${gw.url}/mint`;
  agent = await startAgent(gw.url, { models: [MODEL], reply: ["fine", "."] });
  await waitFor(async () => {
    const m = (await (await fetch(`${gw.url}/v1/models`)).json()) as { data: { id: string }[] };
    return m.data.some((x) => x.id === MODEL) || undefined;
  });
  mcp = await startCli(["http", "--port", "0", "--gateway", gw.url, "--data-dir", join(dir, "mcp")]);
  mcpToken = printedMcpToken(mcp.stdout())!;
  client = await Purse.open(mintUrl);
  await client.fund(400);
  // A service on the gateway's machine that no outsider should make the gateway dial.
  internal = createTcpServer((s) => {
    internalConnections++;
    s.destroy();
  });
  await new Promise<void>((r) => internal.listen(0, "127.0.0.1", r));
}, 90_000);

afterAll(async () => {
  await new Promise<void>((r) => internal?.close(() => r()));
  await mcp?.stop();
  await agent?.close();
  expect(await gw?.stop()).toBe(0);
});

/** One paid X-Cashu chat; the change is redeemed at once, as a client does. */
async function paidChat(): Promise<{ status: number; id: string | null }> {
  const paid = 40;
  const res = await postJson(`${gw.url}/v1/chat/completions`, chat, { "x-cashu": await client.token(paid) });
  const change = res.headers.get("x-cashu-change");
  const back = change ? await client.receive(change) : 0;
  charged += paid - back;
  await res.arrayBuffer();
  return { status: res.status, id: res.headers.get("x-owlrun-request-id") };
}

/** A POST from a chosen loopback source address, with an announced body of `bytes` of which 1 KiB is sent. */
function postFrom(
  localAddress: string,
  path: string,
  body: string,
  headers: Record<string, string> = {},
  announced?: number,
): Promise<{ status: number }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, gw.url), {
      method: "POST",
      localAddress,
      headers: {
        "content-type": "application/json",
        "content-length": String(announced ?? Buffer.byteLength(body)),
        ...headers,
      },
    });
    req.on("response", (res) => {
      res.resume();
      res.on("end", () => {
        req.destroy();
        resolve({ status: res.statusCode! });
      });
    });
    req.on("error", reject);
    if (announced) req.write(body.slice(0, 1024));
    else req.end(body);
  });
}

describe("attacks replayed against a running network", () => {
  it("an unpaid-challenge flood from one address is cut off at the limit; paying clients are served meanwhile", async () => {
    const body = JSON.stringify(chat);
    const flood = Array.from({ length: 60 }, () => postFrom("127.0.0.9", "/v1/chat/completions", body));
    const during = await Promise.all([paidChat(), paidChat()]);
    const statuses = (await Promise.all(flood)).map((r) => r.status);
    expect(during.map((d) => d.status)).toEqual([200, 200]);
    expect(statuses.filter((s) => s === 402).length).toBeLessThanOrEqual(CHALLENGES_PER_MINUTE);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(60 - CHALLENGES_PER_MINUTE);
    expect(statuses.every((s) => s === 402 || s === 429)).toBe(true);
    expect((await fetch(`${gw.url}/v1/info`)).status).toBe(200);
  });

  it("strangers' market deliveries are refused from their headers", async () => {
    const res = await postFrom(
      "127.0.0.10",
      "/v1/market/tasks/t_x/deliver",
      `{"filename":"x","content_base64":"${"A".repeat(2000)}`,
      {},
      7 * 1024 * 1024,
    );
    expect(res.status).toBe(401);
  });

  it("web pages on other localhost ports cannot use the MCP wallet; its owner still can", async () => {
    const owner = await connect({ mcpUrl: `${mcp.url}/mcp`, token: mcpToken });
    await callOk(owner.client, "receive", { token: await client.token(30) });
    mcpFunded += 30;
    const send = JSON.stringify({
      jsonrpc: "2.0",
      id: 2,
      method: "tools/call",
      params: { name: "send", arguments: { amount_sats: 20 } },
    });
    const init = JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "page", version: "1" } },
    });
    const headers = { "content-type": "application/json", accept: "application/json, text/event-stream" };
    for (const origin of ["http://localhost:9999", "http://127.0.0.1:8080", "null"]) {
      for (const body of [init, send]) {
        const res = await rawRequest(`${mcp.url}/mcp`, {
          method: "POST",
          headers: { ...headers, origin },
          body,
        });
        expect(res.status, origin).toBe(403);
        expect(res.headers["access-control-allow-origin"]).toBeUndefined();
      }
    }
    // Without the token (a local process that did not read the 0600 file): no session either.
    const anonymous = await rawRequest(`${mcp.url}/mcp`, { method: "POST", headers, body: init });
    expect(anonymous.status).toBe(401);
    expect((await callOk(owner.client, "balance")).total_sats).toBe(30);
    await owner.close();
  });

  it("a node cannot point its payouts at the gateway's own machine", async () => {
    const { api_key } = (await (await postJson(`${gw.url}/v1/gateway/signup`, {})).json()) as {
      api_key: string;
    };
    const port = (internal.address() as AddressInfo).port;
    for (const lightning_address of [
      `x@127.0.0.1:${port}`,
      `x@localhost:${port}`,
      "x@10.0.0.1",
      "x@100.64.0.1",
    ]) {
      const res = await postJson(
        `${gw.url}/v1/gateway/register`,
        { node_id: "ssrf-node", api_key, models: [MODEL], lightning_address },
        { authorization: `Bearer ${api_key}` },
      );
      expect(res.status, lightning_address).toBe(400);
    }
    expect(internalConnections).toBe(0);
  });

  it("a change id that leaks after the client collected is worth nothing", async () => {
    const { status, id } = await paidChat();
    expect(status).toBe(200);
    const leaked = await fetch(`${gw.url}/v1/cashu/change/${id}`);
    expect(leaked.status).toBe(410);
  });

  it("ends with the books balanced and the ecash at the mint equal to them", async () => {
    const books = await settledGatewayBooks(join(dir, "gateway"), mintUrl);
    const why = JSON.stringify(Object.fromEntries(books.balances));
    expectBooksClosed(books, why);
    expect(await client.notUnspent()).toBe(0);
    // What the client spent at the gateway is what it was charged, and that went to the provider and fees.
    expect(client.sent - client.received - mcpFunded).toBe(charged);
    const earned = sumAccounts(books, "provider:") + (books.balances.get("equity:fees") ?? 0);
    expect(earned, why).toBe(charged * 1000);
    expect(sumAccounts(books, "user:"), why).toBe(0);
    // Every sat minted is in the client's purse, the MCP wallet, or the gateway's ecash.
    expect(client.balance + mcpFunded + books.ecashMsat / 1000).toBe(client.minted);
    expect(internalConnections).toBe(0);
  });
});
