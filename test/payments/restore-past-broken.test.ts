/**
 * Restart repair restores each counter range on its own: a range that cannot be restored (its mint
 * stays unreachable) holds back only its own claim, not every range and claim after it. Two X-Cashu
 * claims on two mints lose their swap answers; at the restart the first mint is still unreachable
 * and the second answers: the second claim's value comes back as change, the first stays held back
 * (no change, nothing credited) until a start that can restore it, on SQLite and on PostgreSQL.
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { getEncodedToken } from "@cashu/cashu-ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintProofs, newWallet } from "../support/cashu.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";
import { type FlakyProxy, startFlakyProxy } from "../support/flaky-proxy.js";
import { type OpenAIUpstream, startOpenAIUpstream } from "../support/openai-upstream.js";
import { testDatabase } from "../support/postgres.js";
import { Restarts } from "../support/restarts.js";

const MODEL = "gpt-4o-mini";
const KEY = "sk-test-restore-past-broken-0123";
const mints: CliProcess[] = [];
const proxies: FlakyProxy[] = [];
let upstream: OpenAIUpstream;
let db: { url: string; drop(): Promise<void> };
const restarts = new Restarts();

beforeAll(async () => {
  for (let i = 0; i < 2; i++) {
    const mint = await startCli(["mint", "--port", "0", "--data-dir", tempDir(), "--fake-delay-ms", "20"]);
    mints.push(mint);
    proxies.push(await startFlakyProxy(mint.url));
  }
  upstream = await startOpenAIUpstream(KEY);
  db = await testDatabase("restorepast");
});
afterAll(async () => {
  await restarts.closeAll();
  await upstream?.close();
  for (const p of proxies) await p.close();
  for (const m of mints) await m.stop();
  await db?.drop();
});

describe.each(["sqlite", "postgres"] as const)("on %s", (kind) => {
  const dataDir = join(tempDir("owlrun-restore-past-"), "gateway");
  const gateway = () =>
    restarts.start(
      {
        dataDir,
        trustedMints: proxies.map((p) => p.url),
        upstreams: {
          upstreams: [
            {
              name: "up",
              base_url: upstream.baseUrl,
              api_key: KEY,
              models: { [MODEL]: { price: { per_m_input_usd: 3, per_m_output_usd: 15 } } },
            },
          ],
        },
      },
      kind === "postgres" ? db.url : undefined,
    );
  const chat = (url: string, headers: Record<string, string>) =>
    fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }] }),
    });
  const change = async (url: string, id: string) => {
    const res = await fetch(`${url}/v1/cashu/change/${id}`);
    return res.status === 200 ? ((await res.json()) as { change_sats: number }).change_sats : res.status;
  };

  it("a range whose mint stays unreachable holds back only its own claim", async () => {
    for (const p of proxies) {
      p.refuse.clear();
      p.dropAnswers.clear();
      p.onDrop = undefined;
    }
    const first = await gateway();
    const ids = [randomUUID(), randomUUID()];
    for (const [i, proxy] of proxies.entries()) {
      const wallet = await newWallet(proxy.url);
      const token = getEncodedToken({ mint: proxy.url, proofs: await mintProofs(wallet, 20 + i * 10) });
      proxy.dropAnswers.set("/v1/swap", 1);
      proxy.onDrop = () => proxy.refuse.add("/v1/swap");
      proxy.refuse.add("/v1/restore");
      expect((await chat(first.gw.url, { "x-cashu": token, "x-owlrun-request-id": ids[i]! })).status).toBe(
        503,
      );
    }
    await first.stop();

    // The first mint is still unreachable; the second answers again.
    const [broken, healthy] = proxies as [FlakyProxy, FlakyProxy];
    broken.refuse.add("*");
    healthy.refuse.clear();
    healthy.onDrop = undefined;
    const second = await gateway();
    expect(await change(second.gw.url, ids[1]!)).toBe(30);
    expect(await change(second.gw.url, ids[0]!)).toBe(404);
    await second.stop();

    // Once that mint answers, a start credits the held-back claim, in full and once.
    broken.refuse.clear();
    broken.onDrop = undefined;
    const third = await gateway();
    expect(await change(third.gw.url, ids[0]!)).toBe(20);
    expect(await change(third.gw.url, ids[1]!)).toBe(30);
    await third.stop();
  });
});
