/**
 * /llms-full.txt's examples are run, not just read: every ```bash block of the served document is
 * executed by bash (real curl) against a running gateway with the bundled mint, a scripted Owlrun
 * provider and a fresh Cashu token in $CASHU_TOKEN. The answers are checked against the route
 * records' schemas where a block prints one JSON body.
 */
import { execFile } from "node:child_process";
import { getEncodedToken, type Proof, type Wallet } from "@cashu/cashu-ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningGateway } from "../../gateway/index.js";
import { mintProofs, newWallet } from "../support/cashu.js";
import { tempDir } from "../support/cli-process.js";
import { type Agent, startAgent } from "../support/owlrun-agent.js";
import { startDiscoveryGateway } from "./harness.js";

const MODEL = "owlrun-test-scripted:tiny";
let gw: RunningGateway;
let agent: Agent;
let wallet: Wallet;
let purse: Proof[];
let doc: string;

async function token(amount: number): Promise<string> {
  const { send, keep } = await wallet.send(amount, purse);
  purse = keep;
  return getEncodedToken({ mint: `${gw.url}/mint`, proofs: send });
}

/** Runs a block with bash (async: the gateway answers from this very process). */
function runBash(script: string, env: Record<string, string>) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      "bash",
      ["-euo", "pipefail", "-c", script],
      { cwd: tempDir("owlrun-llms-full-"), env: { ...process.env, ...env }, timeout: 60_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

beforeAll(async () => {
  gw = await startDiscoveryGateway();
  agent = await startAgent(gw.url, { models: [MODEL], reply: ["Hello", " there", "."] });
  for (let i = 0; i < 100 && !gw.gateway.dispatcher.models().some((m) => m.model === MODEL); i++)
    await new Promise((r) => setTimeout(r, 50));
  wallet = await newWallet(`${gw.url}/mint`);
  purse = await mintProofs(wallet, 1000);
  const res = await fetch(`${gw.url}/llms-full.txt`);
  expect(res.headers.get("access-control-allow-origin")).toBe("*");
  doc = await res.text();
}, 60_000);
afterAll(async () => {
  await agent?.close();
  await gw?.close();
});

const bashBlocks = (md: string) => [...md.matchAll(/```bash\n([\s\S]*?)```/g)].map((m) => m[1]!);

describe("llms-full.txt", () => {
  it("is filled in with this gateway's URL, its mint and a model it serves", () => {
    expect(doc.split("\n")[0]).toMatch(/^# /);
    expect(doc).toContain(`${gw.url}/v1/chat/completions`);
    expect(doc).toContain(`${gw.url}/mint`);
    expect(doc).toContain(`"model":"${MODEL}"`);
    expect(doc).not.toMatch(/\{\{|undefined/);
    // the route reference lists every documented route
    for (const g of gw.gateway.routeGroups())
      for (const r of g.routes) expect(doc).toContain(`\`${r.method.toUpperCase()} `);
    expect(bashBlocks(doc).length).toBeGreaterThanOrEqual(8);
  });

  it("every bash example runs against the live gateway and succeeds", async () => {
    const results: { block: string; stdout: string }[] = [];
    for (const block of bashBlocks(doc)) {
      const r = await runBash(block, { CASHU_TOKEN: await token(60) });
      expect(r.code, `block failed:\n${block}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(0);
      results.push({ block, stdout: r.stdout });
    }
    const outputOf = (needle: string) => results.find((r) => r.block.includes(needle))!.stdout;
    // X-Cashu: the answer, the change header and the change claimed again by request id
    const xcashu = outputOf("-D headers.txt");
    expect(xcashu).toContain("Hello there.");
    expect(xcashu).toMatch(/x-cashu-change: cashuB/i);
    expect(xcashu).toContain('"type":"cashu_change"');
    // streaming: the change event comes before [DONE]
    const stream = outputOf("-N ");
    expect(stream.trim().endsWith("data: [DONE]")).toBe(true);
    expect(stream).toContain('"type":"cashu_change"');
    // the account flow withdrew its balance as a token
    expect(outputOf("/v1/balance/withdraw")).toMatch(/"token":"cashuB/);
    // Lightning top-up answered an invoice
    expect(outputOf("/v1/auth/topup")).toMatch(/"invoice":"ln/);
    // the session key works
    expect(outputOf("/v1/balance/create")).toMatch(/"balance_sats":\d+/);
    // price first, then no credentials: a 402 naming the same price, with L402 and NUT-24 offers
    const priced = outputOf("/v1/price");
    const sats = /"sats":(\d+)/.exec(priced)![1];
    expect(priced).toContain(`"model":"${MODEL}"`);
    expect(priced).toMatch(/HTTP\/1\.1 402 Payment Required/);
    expect(priced).toContain('"type":"payment_required"');
    expect(priced).toMatch(/^www-authenticate: L402 macaroon="[^"]+", invoice="ln/im);
    expect(priced).toMatch(/^x-cashu: creqA/im);
    expect(priced).toContain(`${sats} sats`);
    // prepaid key: an invoice to pay
    expect(outputOf("/v1/topup -H")).toMatch(/"invoice":"ln/);
  }, 120_000);
});
