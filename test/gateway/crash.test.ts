/**
 * kill -9 of the gateway in the middle of a streamed, paid job: on restart the hold is refunded,
 * the change is claimable under the request id the client chose, and the books balance.
 */
import { randomUUID } from "node:crypto";
import { getEncodedToken } from "@cashu/cashu-ts";
import { describe, expect, it } from "vitest";
import { Ledger } from "../../gateway/ledger/index.js";
import { GatewayWallet } from "../../gateway/payments/wallet.js";
import { silentLogger } from "../../src/shared/index.js";
import { mintProofs, newWallet, sumAmounts } from "../support/cashu.js";
import { startCli, tempDir } from "../support/cli-process.js";
import { startAgent } from "../support/owlrun-agent.js";

const MODEL = "owlrun-test-slow:tiny";

describe("gateway crash during a streamed job", () => {
  it("refunds the hold as claimable change after kill -9 and restart", async () => {
    const dir = tempDir();
    const gw = await startCli(["gateway", "--port", "0", "--data-dir", dir, "--fake-delay-ms", "20"]);
    const port = new URL(gw.url).port;
    const mintUrl = `${gw.url}/mint`;
    const agent = await startAgent(gw.url, {
      models: [MODEL],
      reply: Array.from({ length: 200 }, () => "w "),
      chunkDelayMs: 50,
    });
    const wallet = await newWallet(mintUrl);
    const token = getEncodedToken({ mint: mintUrl, proofs: await mintProofs(wallet, 40) });
    const requestId = randomUUID();

    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-cashu": token, "x-owlrun-request-id": requestId },
      body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "go" }], stream: true }),
    });
    expect(res.headers.get("x-owlrun-request-id")).toBe(requestId);
    const reader = res.body!.getReader();
    await reader.read(); // the stream is live and paid for
    await gw.kill(); // kill -9 mid-stream
    await reader.cancel().catch(() => undefined);
    await agent.close();

    const again = await startCli(["gateway", "--port", port, "--data-dir", dir]);
    try {
      const change = await fetch(`${again.url}/v1/cashu/change/${requestId}`);
      expect(change.status).toBe(200);
      const body = (await change.json()) as { token: string; change_sats: number };
      expect(body.change_sats).toBe(40);
      expect(sumAmounts(await wallet.receive(body.token))).toBe(40);
    } finally {
      await again.stop();
    }
    const ledger = Ledger.open(`${dir}/gateway`);
    const gwWallet = await GatewayWallet.open(`${dir}/gateway`, [mintUrl], silentLogger);
    const audit = await ledger.audit();
    expect(audit.imbalanceMsat).toBe(0);
    expect(audit.ecashMsat).toBe((await gwWallet.balance(mintUrl)) * 1000);
    expect(audit.ecashMsat).toBe(0); // nothing was served, nothing kept
    await ledger.close();
    await gwWallet.close();
  }, 60_000);
});
