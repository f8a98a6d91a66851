/**
 * Issue 15 item 11: `GET /v1/cashu/change/:id` hands unredeemed change to whoever holds the id.
 * The id is a bearer capability, and the API documents say so; once the client redeemed its change
 * at the mint (NUT-07 SPENT) the route answers 410 and never shows the token again, so an id that
 * leaked after the client collected is worth nothing. The old code served the token forever.
 */
import { getEncodedToken, type Proof, type Wallet } from "@cashu/cashu-ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintProofs, newWallet, sumAmounts } from "../support/cashu.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";
import { type Agent, startAgent } from "../support/owlrun-agent.js";
import { postJson } from "../support/payments.js";
import { waitFor } from "../mcp/harness.js";

const MODEL = "owlrun-test-scripted:tiny";
let gw: CliProcess;
let agent: Agent;
let wallet: Wallet;
let purse: Proof[];

beforeAll(async () => {
  gw = await startCli(["gateway", "--port", "0", "--data-dir", tempDir(), "--fake-delay-ms", "20"]);
  agent = await startAgent(gw.url, { models: [MODEL], reply: ["ok"] });
  await waitFor(async () => {
    const m = (await (await fetch(`${gw.url}/v1/models`)).json()) as { data: { id: string }[] };
    return m.data.some((x) => x.id === MODEL) || undefined;
  });
  wallet = await newWallet(`${gw.url}/mint`);
  purse = await mintProofs(wallet, 200);
});
afterAll(async () => {
  await agent?.close();
  await gw?.stop();
});

describe("change ids are bearer capabilities", () => {
  it("serves the change until it is redeemed at the mint, then answers 410 without the token", async () => {
    const { send, keep } = await wallet.send(100, purse);
    purse = keep;
    const res = await postJson(
      `${gw.url}/v1/chat/completions`,
      { model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 8 },
      { "x-cashu": getEncodedToken({ mint: `${gw.url}/mint`, proofs: send }) },
    );
    expect(res.status).toBe(200);
    const id = res.headers.get("x-owlrun-request-id")!;
    const change = res.headers.get("x-cashu-change")!;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    // Not yet collected: the id still claims it (a client that lost the answer).
    const before = await fetch(`${gw.url}/v1/cashu/change/${id}`);
    expect(before.status).toBe(200);
    expect(((await before.json()) as { token: string }).token).toBe(change);
    // The client redeems its change at the mint.
    const got = await wallet.receive(change);
    expect(sumAmounts(got)).toBeGreaterThan(0);
    // Whoever holds the id now gets nothing, and never the token.
    const after = await fetch(`${gw.url}/v1/cashu/change/${id}`);
    expect(after.status).toBe(410);
    const body = await after.text();
    expect(JSON.parse(body)).toMatchObject({ error: { type: "change_redeemed", code: 410 } });
    expect(body).not.toContain(change);
  });

  it("the API documents (OpenAPI and llms.txt) call the id a bearer capability", async () => {
    const openapi = (await (await fetch(`${gw.url}/openapi.json`)).json()) as any;
    const op = openapi.paths["/v1/cashu/change/{id}"].get;
    expect(op.description).toMatch(/bearer capability/);
    expect(Object.keys(op.responses)).toContain("410");
    const llms = await (await fetch(`${gw.url}/llms.txt`)).text();
    expect(llms).toMatch(/X-Owlrun-Request-Id.*bearer capability/);
  });
});
