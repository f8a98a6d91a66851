/**
 * Issue 15 item 6: an unpaid request must cost the gateway little. The macaroon codec allocates
 * what a macaroon needs (macaroon@3.0.4 left a 3.3 GB buffer per challenge and threw at a fourth
 * caveat) and interoperates with js-macaroon; challenges are rate-limited per client address; what
 * unpaid challenges leave behind (one-shot rows, mint quotes) is pruned after expiry.
 */
import { request } from "node:http";
import { randomBytes } from "node:crypto";
import { importMacaroon, newMacaroon } from "macaroon";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ledger } from "../../gateway/ledger/index.js";
import { L402Payments } from "../../gateway/payments/l402.js";
import {
  decodeMacaroon,
  encodeMacaroon,
  macaroonToBase64,
  mintMacaroon,
  verifyMacaroon,
} from "../../gateway/payments/macaroon.js";
import { OneShotStore } from "../../gateway/payments/oneshot.js";
import { GatewayWallet } from "../../gateway/payments/wallet.js";
import { MintStore } from "../../gateway/mint/index.js";
import { silentLogger } from "../../src/shared/index.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";
import { type Agent, startAgent } from "../support/owlrun-agent.js";
import { waitFor } from "../mcp/harness.js";

const MODEL = "owlrun-test-scripted:tiny";
const CAVEATS = Array.from({ length: 8 }, (_, i) => `caveat${i} = ${"v".repeat(i * 10)}`);

describe("macaroon V2 codec", () => {
  const rootKey = randomBytes(32);
  const identifier = randomBytes(66);

  it("encodes eight caveats in a few hundred bytes and verifies them back", () => {
    const before = process.memoryUsage().arrayBuffers;
    const bytes = encodeMacaroon(mintMacaroon({ rootKey, identifier, location: "here", caveats: CAVEATS }));
    // macaroon@3.0.4 doubled its buffer on every append: gigabytes, then a RangeError.
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 1024 * 1024);
    expect(bytes.length).toBeLessThan(700);
    const m = decodeMacaroon(bytes.toString("base64url"));
    expect(m.caveats).toEqual(CAVEATS);
    expect(m.location).toBe("here");
    const seen: string[] = [];
    verifyMacaroon(m, rootKey, (c) => (seen.push(c), null));
    expect(seen).toEqual(CAVEATS);
    expect(() => verifyMacaroon(m, randomBytes(32), () => null)).toThrow(/signature/);
    expect(() => verifyMacaroon({ ...m, caveats: [...CAVEATS, "x = 1"] }, rootKey, () => null)).toThrow();
    expect(() => verifyMacaroon(m, rootKey, (c) => (c.startsWith("caveat3") ? "no" : null))).toThrow(
      /caveat3/,
    );
  });

  it("reads and writes the format js-macaroon (and so libmacaroons, lnd, aperture) uses", () => {
    const ours = mintMacaroon({ rootKey, identifier, location: "loc", caveats: CAVEATS.slice(0, 3) });
    const theirs = importMacaroon(macaroonToBase64(ours));
    expect(Buffer.from(theirs.identifier)).toEqual(identifier);
    theirs.verify(rootKey, () => null);
    const js = newMacaroon({ identifier, location: "loc", rootKey, version: 2 });
    for (const c of CAVEATS.slice(0, 3)) js.addFirstPartyCaveat(c);
    const wire = Buffer.from(js.exportBinary());
    expect(encodeMacaroon(ours)).toEqual(wire);
    // Standard base64 with padding (how lnd prints macaroons) decodes too.
    const back = decodeMacaroon(wire.toString("base64"));
    verifyMacaroon(back, rootKey, () => null);
  });

  it("refuses garbage, truncation, trailing bytes and oversized input with MacaroonError", () => {
    const good = encodeMacaroon(mintMacaroon({ rootKey, identifier, caveats: ["a = b"] }));
    for (const bad of [
      "",
      "!!!",
      good.subarray(0, good.length - 3).toString("base64url"),
      Buffer.concat([good, Buffer.of(0)]).toString("base64url"),
      Buffer.concat([Buffer.of(1), good.subarray(1)]).toString("base64url"),
      Buffer.alloc(20_000, 2).toString("base64url"),
      Buffer.of(2, 2, 0xff, 0xff, 0xff, 0xff, 0x0f).toString("base64url"),
    ]) {
      expect(() => decodeMacaroon(bad), JSON.stringify(bad.slice(0, 20))).toThrow();
    }
  });
});

describe("unpaid challenges against a gateway", () => {
  let dir: string;
  let gw: CliProcess;
  let agent: Agent;

  beforeAll(async () => {
    dir = tempDir();
    gw = await startCli([
      "gateway",
      "--port",
      "0",
      "--data-dir",
      dir,
      "--fake-delay-ms",
      "20",
      "--challenges-per-minute",
      "4",
    ]);
    agent = await startAgent(gw.url, { models: [MODEL], reply: ["ok"] });
    await waitFor(async () => {
      const m = (await (await fetch(`${gw.url}/v1/models`)).json()) as { data: { id: string }[] };
      return m.data.some((x) => x.id === MODEL) || undefined;
    });
  });
  afterAll(async () => {
    await agent?.close();
    await gw?.stop();
  });

  /** POST from a chosen loopback source address (all of 127/8 reaches the gateway). */
  function postFrom(localAddress: string, path: string, body: unknown) {
    const url = new URL(path, gw.url);
    return new Promise<{ status: number; headers: Record<string, unknown>; body: any }>((resolve, reject) => {
      const req = request(
        url,
        { method: "POST", localAddress, headers: { "content-type": "application/json" } },
        (res) => {
          let text = "";
          res.on("data", (d) => (text += d));
          res.on("end", () =>
            resolve({ status: res.statusCode!, headers: res.headers, body: JSON.parse(text) }),
          );
        },
      );
      req.on("error", reject);
      req.end(JSON.stringify(body));
    });
  }

  it("answers 429 with Retry-After once one address had its challenges; other addresses still get 402", async () => {
    const ask = (addr: string) =>
      postFrom(addr, "/v1/chat/completions", { model: MODEL, messages: [{ role: "user", content: "hi" }] });
    for (let i = 0; i < 4; i++) {
      const res = await ask("127.0.0.2");
      expect(res.status).toBe(402);
      expect(res.body.error.l402.macaroon).toMatch(/^[A-Za-z0-9_-]+$/);
    }
    const limited = await ask("127.0.0.2");
    expect(limited.status).toBe(429);
    expect(limited.body.error.type).toBe("rate_limited");
    expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);
    expect(limited.headers["www-authenticate"]).toBeUndefined();
    expect((await ask("127.0.0.3")).status).toBe(402);
  });
});

describe("pruning what unpaid challenges leave", () => {
  it("drops unpaid one-shot rows and mint quotes after expiry, keeps a paid one", async () => {
    const dir = tempDir();
    // Fake Lightning whose invoices never pay themselves: only the one marked paid below is paid.
    const gw = await startCli(["gateway", "--port", "0", "--data-dir", dir, "--fake-delay-ms", "999999999"]);
    const mintUrl = `${gw.url}/mint`;
    const d = tempDir();
    const w = await GatewayWallet.open(d, [mintUrl], silentLogger);
    const ledger = Ledger.open(d);
    const store = new OneShotStore(`${d}/payments.sqlite`);
    const l402 = new L402Payments(d, w, ledger, store, 60);
    const mintStore = new MintStore(`${dir}/mint/mint.sqlite`);
    try {
      const unpaid = await l402.challenge("/v1/chat/completions", 5);
      const paid = await l402.challenge("/v1/chat/completions", 7);
      const quoteOf = (hash: string) => store.get(`l402:${hash}`)!.quote!;
      const unpaidQuote = quoteOf(unpaid.paymentHash);
      // The payer's node settled this one (the Lightning edge, seen from the mint's own store).
      expect(mintStore.markMintQuotePaid(quoteOf(paid.paymentHash))).toBe(true);
      // Not yet expired: nothing goes.
      expect(await l402.pruneUnpaid()).toBe(0);
      const later = Date.now() + 3 * 3600_000;
      expect(await l402.pruneUnpaid(later)).toBe(1);
      expect(store.get(`l402:${unpaid.paymentHash}`)).toBeUndefined();
      expect(store.get(`l402:${paid.paymentHash}`)?.state).toBe("pending");
      // The mint forgets the unpaid quote once its invoice is past expiry; the paid one stays.
      expect(mintStore.pruneUnpaidMintQuotes(Math.floor(Date.now() / 1000))).toBe(0);
      expect(mintStore.pruneUnpaidMintQuotes(Math.floor(later / 1000))).toBe(1);
      expect(mintStore.getMintQuote(unpaidQuote)).toBeUndefined();
      expect(mintStore.getMintQuote(quoteOf(paid.paymentHash))?.state).toBe("PAID");
    } finally {
      mintStore.close();
      store.close();
      await ledger.close();
      await w.close();
      await gw.stop();
    }
  });
});
