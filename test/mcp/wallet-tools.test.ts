/**
 * The wallet tools end to end with real MCP SDK clients over Streamable HTTP, against the bundled
 * mint as a child process (fake Lightning): topup → (the fake backend pays) → topup_status with
 * progress → balance; send from one MCP server's wallet and receive in another's; withdraw to a
 * bolt11 invoice and to a Lightning address; spend limits: refusal without elicitation, user
 * confirmation in the 2026-07-28 form and in the older push form (v2 legacy and 1.x clients),
 * and the daily limit.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningMcpHttp, startMcpHttp } from "../../src/mcp/index.js";
import { silentLogger } from "../../src/shared/index.js";
import { externalInvoice } from "../support/blinded.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";
import { type LnurlServer, startLnurlServer } from "../support/lnurl-server.js";
import { callOk, callText, type Connected, connect, connectV1, DEAD_GATEWAY } from "./harness.js";

let mint: CliProcess;
let lnurl: LnurlServer;
let alice: RunningMcpHttp; // per call 200, per day 1100
let bob: RunningMcpHttp;
let a: Connected;

const PER_CALL = 200;

beforeAll(async () => {
  [mint, lnurl] = await Promise.all([
    startCli(["mint", "--port", "0", "--data-dir", tempDir(), "--fake-delay-ms", "1200"]),
    startLnurlServer(),
  ]);
  // No gateway: the wallet tools need only the mint (--mint-url).
  const common = { gatewayUrl: DEAD_GATEWAY, mintUrl: mint.url, port: 0, log: silentLogger };
  [alice, bob] = await Promise.all([
    startMcpHttp({
      ...common,
      dataDir: tempDir("owlrun-alice-"),
      maxPerCallSat: PER_CALL,
      maxPerDaySat: 1100,
      allowLoopbackLnurl: true,
    }),
    startMcpHttp({ ...common, dataDir: tempDir("owlrun-bob-"), maxPerCallSat: 1000, maxPerDaySat: 25 }),
  ]);
  a = await connect(alice);
}, 60_000);

afterAll(async () => {
  await a?.close();
  await Promise.all([alice?.close(), bob?.close(), lnurl?.close()]);
  await mint?.stop();
});

const balanceOf = async (c: Connected) => (await callOk(c.client, "balance")).total_sats as number;

describe("wallet tools against a real mint", () => {
  it("topup returns the invoice as text and as a QR PNG; topup_status waits with progress and claims it", async () => {
    const empty = await callText(a.client, "balance");
    expect(empty.text).toContain("use topup");

    const r = await a.client.callTool({ name: "topup", arguments: { amount_sats: 1500 } });
    const top = r.structuredContent as any;
    expect(top).toMatchObject({ amount_sats: 1500, mint: mint.url, invoice: expect.stringMatching(/^lnbc/) });
    const content = r.content as any[];
    expect(content[0]).toMatchObject({ type: "text" });
    expect(content[0].text).toContain(top.invoice);
    expect(content[0].text).toContain(top.quote);
    const image = content.find((c) => c.type === "image");
    expect(image.mimeType).toBe("image/png");
    expect(Buffer.from(image.data, "base64").subarray(0, 8)).toEqual(
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    );

    // Not paid yet (the fake backend pays after 1.2 s): pending without wait.
    const pending = await callOk(a.client, "topup_status", { quote: top.quote });
    expect(pending).toMatchObject({ state: "pending", amount_sats: 1500, balance_sats: 0 });

    const updates: { progress: number; message?: string }[] = [];
    const claimed = await a.client.callTool(
      { name: "topup_status", arguments: { quote: top.quote, wait: true, timeout_seconds: 30 } },
      { onprogress: (p) => updates.push(p) },
    );
    expect(claimed.structuredContent).toMatchObject({
      state: "claimed",
      amount_sats: 1500,
      balance_sats: 1500,
    });
    expect(updates.length).toBeGreaterThan(0);
    expect(updates[0]!.message).toContain("waiting for the Lightning payment");
    expect(await balanceOf(a)).toBe(1500);
    // Claiming again is harmless.
    expect(await callOk(a.client, "topup_status", { quote: top.quote })).toMatchObject({ state: "claimed" });
    expect(await balanceOf(a)).toBe(1500);
    const unknown = await callText(a.client, "topup_status", { quote: "no-such-quote" });
    expect(unknown.isError).toBe(true);
  });

  it("sends a token from one server's wallet that the other receives", async () => {
    const b = await connect(bob);
    const sent = await callOk(a.client, "send", { amount_sats: 40 });
    expect(sent).toMatchObject({ amount_sats: 40, mint: mint.url, balance_sats: 1460 });
    expect(sent.token).toMatch(/^cashuB/);
    const got = await callOk(b.client, "receive", { token: sent.token });
    expect(got).toEqual({ received_sats: 40, mint: mint.url, balance_sats: 40 });
    const again = await callText(b.client, "receive", { token: sent.token });
    expect(again).toMatchObject({ isError: true, text: "that cashu token was already spent" });

    // bob's daily limit is 25 sats: never exceeded.
    const under = await callText(b.client, "send", { amount_sats: 20 });
    expect(under.isError).toBe(false);
    const refused = await callText(b.client, "send", { amount_sats: 10 });
    expect(refused.isError).toBe(true);
    expect(refused.text).toMatch(
      /^refused: daily spend limit: 20 of 25 sats spent today; 10 more is not allowed/,
    );
    expect(await balanceOf(b)).toBe(20);
    await b.close();
  });

  it("withdraws to a bolt11 invoice and to a Lightning address", async () => {
    const paid = await callOk(a.client, "withdraw", { destination: externalInvoice(100) });
    expect(paid).toMatchObject({ paid_sats: 100, fee_sats: 1, state: "paid", balance_sats: 1359 });
    const mismatch = await callText(a.client, "withdraw", {
      destination: externalInvoice(10),
      amount_sats: 11,
    });
    expect(mismatch).toMatchObject({ isError: true, text: "the invoice is for 10 sats, not 11 sats" });
    const noAmount = await callText(a.client, "withdraw", { destination: "carol@127.0.0.1:1" });
    expect(noAmount).toMatchObject({ isError: true, text: "paying a Lightning address needs amount_sats" });

    const address = lnurl.address("carol");
    const toAddress = await callOk(a.client, "withdraw", { destination: address, amount_sats: 20 });
    expect(toAddress).toMatchObject({ paid_sats: 20, state: "paid" });
    expect(lnurl.requests).toContain(20_000);
    expect(await balanceOf(a)).toBe(1359 - 20 - toAddress.fee_sats);
  });

  it("refuses a spend above the per-call limit when the client cannot confirm", async () => {
    const before = await balanceOf(a);
    const r = await callText(a.client, "send", { amount_sats: 250 });
    expect(r.isError).toBe(true);
    expect(r.text).toContain("above the per-call limit of 200 sats");
    expect(r.text).toContain("does not support elicitation");
    const v1 = await connectV1(alice);
    const old = await v1.client.callTool({ name: "send", arguments: { amount_sats: 250 } });
    expect(old.isError).toBe(true);
    await v1.close();
    expect(await balanceOf(a)).toBe(before);
  });

  it("asks the user (2026-07-28 input_required) and pays only on acceptance", async () => {
    const before = await balanceOf(a);
    const declining = await connect(alice, { elicit: "decline" });
    const no = await callText(declining.client, "send", { amount_sats: 250 });
    expect(no).toMatchObject({
      isError: true,
      text: "not paid: the user declined to send a 250-sat cashu token (250 sats).",
    });
    expect(declining.elicitations).toHaveLength(1);
    expect(declining.elicitations[0]).toContain("250 sats");
    expect(declining.elicitations[0]).toContain("per-call limit of 200 sats");
    await declining.close();
    expect(await balanceOf(a)).toBe(before);

    const accepting = await connect(alice, { elicit: "accept" });
    const yes = await callOk(accepting.client, "send", { amount_sats: 250 });
    expect(yes).toMatchObject({ amount_sats: 250, balance_sats: before - 250 });
    expect(accepting.elicitations).toHaveLength(1);
    // Under the limit: no question asked.
    await callOk(accepting.client, "send", { amount_sats: 5 });
    expect(accepting.elicitations).toHaveLength(1);
    await accepting.close();
  });

  it("asks older clients with the push form (elicitation/create): v2 on the 2025 protocol and the 1.x SDK", async () => {
    const before = await balanceOf(a);
    const legacy = await connect(alice, { era: "legacy", elicit: "accept" });
    expect(await callOk(legacy.client, "send", { amount_sats: 210 })).toMatchObject({ amount_sats: 210 });
    expect(legacy.elicitations).toHaveLength(1);
    await legacy.close();

    const v1 = await connectV1(alice, "accept");
    const r = await v1.client.callTool({ name: "send", arguments: { amount_sats: 220 } });
    expect(r.isError).toBeFalsy();
    expect(r.structuredContent).toMatchObject({ amount_sats: 220 });
    expect(v1.elicitations[0]).toContain("220 sats");
    await v1.close();

    const v1no = await connectV1(alice, "decline");
    const no = await v1no.client.callTool({ name: "send", arguments: { amount_sats: 220 } });
    expect(no.isError).toBe(true);
    await v1no.close();
    expect(await balanceOf(a)).toBe(before - 430);
  });

  it("never exceeds the daily limit, even with confirmation", async () => {
    const status = await callOk(a.client, "balance");
    expect(status.spent_today_sats).toBeGreaterThan(800);
    const accepting = await connect(alice, { elicit: "accept" });
    const left = 1100 - status.spent_today_sats;
    expect(left + 1).toBeGreaterThan(PER_CALL); // would need confirmation, but the daily limit comes first
    expect(status.total_sats).toBeGreaterThan(left + 1);
    const r = await callText(accepting.client, "send", { amount_sats: left + 1 });
    expect(r.isError).toBe(true);
    expect(r.text).toMatch(/^refused: daily spend limit/);
    expect(accepting.elicitations).toHaveLength(0);
    await accepting.close();
  });
});
