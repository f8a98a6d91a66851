/**
 * 100 concurrent requests spending one token: exactly one is served, the other 99 get 402
 * token_spent, and the books show exactly one charge — nothing lost, nothing paid twice.
 */
import { getEncodedToken } from "@cashu/cashu-ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ledger } from "../../gateway/ledger/index.js";
import { mintProofs, newWallet, sumAmounts } from "../support/cashu.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";
import { type Agent, startAgent } from "../support/owlrun-agent.js";

const MODEL = "owlrun-test-scripted:tiny";
let dir: string;
let gw: CliProcess;
let agent: Agent;

beforeAll(async () => {
  dir = tempDir();
  gw = await startCli(["gateway", "--port", "0", "--data-dir", dir, "--fake-delay-ms", "20"]);
  agent = await startAgent(gw.url, { models: [MODEL], reply: ["one"] });
});
afterAll(async () => {
  await agent.close();
  await gw.stop();
});

describe("one token, 100 concurrent requests", () => {
  it("serves exactly one and charges exactly once", async () => {
    const mintUrl = `${gw.url}/mint`;
    const wallet = await newWallet(mintUrl);
    const token = getEncodedToken({ mint: mintUrl, proofs: await mintProofs(wallet, 64) });
    const results = await Promise.all(
      Array.from({ length: 100 }, () =>
        fetch(`${gw.url}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json", "x-cashu": token },
          body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }] }),
        }).then(async (r) => ({
          status: r.status,
          change: r.headers.get("x-cashu-change"),
          body: (await r.json()) as any,
        })),
      ),
    );
    const served = results.filter((r) => r.status === 200);
    expect(served).toHaveLength(1);
    const refused = results.filter((r) => r.status !== 200);
    expect(refused.every((r) => r.status === 402 && r.body.error.type === "token_spent")).toBe(true);
    expect(sumAmounts(await wallet.receive(served[0]!.change!))).toBe(64 - served[0]!.body.usage.cost.sats);

    await agent.close();
    await gw.stop();
    const ledger = Ledger.open(`${dir}/gateway`);
    const audit = await ledger.audit();
    expect(audit.imbalanceMsat).toBe(0);
    expect(audit.ecashMsat).toBe(served[0]!.body.usage.cost.sats * 1000); // the one charge, nothing else
    await ledger.close();
    gw = await startCli(["gateway", "--port", "0", "--data-dir", dir]);
    agent = await startAgent(gw.url, { models: [MODEL] });
  });
});
