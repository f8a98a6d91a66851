/**
 * The provider's money, end to end on a gateway child process: jobs credit the node (95%), the node
 * hears it in heartbeat_ack and job_complete, earnings past the threshold are paid to its Lightning
 * address automatically, and what is left can be taken as ecash.
 */
import { getEncodedToken } from "@cashu/cashu-ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintProofs, newWallet, sumAmounts } from "../support/cashu.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";
import { type LnurlServer, startLnurlServer } from "../support/lnurl-server.js";
import { type Agent, startAgent } from "../support/owlrun-agent.js";

const MODEL = "owlrun-test-scripted:tiny";
let gw: CliProcess;
let lnurl: LnurlServer;
let agent: Agent;

beforeAll(async () => {
  lnurl = await startLnurlServer();
  gw = await startCli([
    "gateway",
    "--port",
    "0",
    "--data-dir",
    tempDir(),
    "--fake-delay-ms",
    "20",
    "--payout-threshold-sats",
    "20",
    "--payout-interval-ms",
    "300",
    "--allow-loopback-lnurl",
  ]);
  agent = await startAgent(gw.url, {
    models: [MODEL],
    reply: ["paid", " work"],
    lightningAddress: lnurl.address("node"),
  });
});
afterAll(async () => {
  await agent.close();
  await gw.stop();
  await lnurl.close();
});

const earnings = async () =>
  (await (
    await fetch(`${gw.url}/v1/provider/earnings`, { headers: { authorization: `Bearer ${agent.apiKey}` } })
  ).json()) as any;

describe("provider earnings and payouts", () => {
  it("refuses anyone without a registered provider key", async () => {
    const res = await fetch(`${gw.url}/v1/provider/earnings`, {
      headers: { authorization: "Bearer owlr_prov_nope" },
    });
    expect(res.status).toBe(401);
  });

  it("credits jobs, reports them to the node, pays out over Lightning past the threshold, and pays the rest as ecash", async () => {
    const mintUrl = `${gw.url}/mint`;
    const wallet = await newWallet(mintUrl);
    let purse = await mintProofs(wallet, 200);
    for (let i = 0; i < 24; i++) {
      const { send, keep } = await wallet.send(5, purse);
      purse = keep;
      const res = await fetch(`${gw.url}/v1/chat/completions`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-cashu": getEncodedToken({ mint: mintUrl, proofs: send }),
        },
        body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }] }),
      });
      expect(res.status).toBe(200);
      purse.push(...(await wallet.receive(res.headers.get("x-cashu-change")!)));
    }
    // 24 jobs at the 2-sat floor, 1 sat of each to the node: 24 sats earned in total.
    const completes = agent.received.filter((m) => m.type === "job_complete");
    expect(completes).toHaveLength(24);
    expect(completes[0]).toMatchObject({ tokens: 2, earned_usd: expect.any(Number) });

    // The payout loop pays the balance (minus the routing fee reserve) to the Lightning address.
    for (let i = 0; i < 50 && lnurl.requests.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(lnurl.requests).toHaveLength(1);
    let e = await earnings();
    for (let i = 0; i < 30 && !e.payouts.some((p: any) => p.state === "paid"); i++) {
      await new Promise((r) => setTimeout(r, 100));
      e = await earnings();
    }
    const payout = e.payouts[0];
    expect(payout.state).toBe("paid");
    expect(payout.amount_sats * 1000).toBe(lnurl.requests[0]);
    expect(e.earned_total_sats).toBe(24);
    expect(e.balance_sats).toBe(24 - payout.amount_sats - payout.fee_sats);

    // heartbeat_ack carries the real numbers (withdraw_history in msat, as Owlrun nodes expect).
    agent.send(JSON.stringify({ type: "heartbeat", gpu_util_pct: 0, vram_free_mb: 0, queue_depth: 0 }));
    await new Promise((r) => setTimeout(r, 1100));
    agent.send(JSON.stringify({ type: "heartbeat", gpu_util_pct: 0, vram_free_mb: 0, queue_depth: 0 }));
    await new Promise((r) => setTimeout(r, 200));
    const ack = agent.received.filter((m) => m.type === "heartbeat_ack").at(-1) as any;
    expect(ack.earned_total_sats).toBe(24);
    expect(ack.balance_sats).toBe(e.balance_sats);
    expect(ack.withdraw_history[0].amount_sats).toBe(payout.amount_sats * 1000);
    expect(ack.btc_daily_avg).toBeGreaterThan(0);

    // What is left comes out as ecash.
    const w = await fetch(`${gw.url}/v1/provider/withdraw-ecash`, {
      method: "POST",
      headers: { authorization: `Bearer ${agent.apiKey}` },
    });
    const { token, amount_sats } = (await w.json()) as any;
    expect(amount_sats).toBe(e.balance_sats);
    expect(sumAmounts(await wallet.receive(token))).toBe(e.balance_sats);
    expect((await earnings()).balance_sats).toBe(0);
  });
});
