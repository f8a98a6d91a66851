/**
 * Property-based fuzzing (fast-check) of the money routes: malformed tokens, headers and JSON,
 * huge and negative amounts. Every answer is a documented 4xx JSON error — never a 5xx, never a
 * crash — and afterwards the books and the mint are exactly as before.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";
import { type Agent, startAgent } from "../support/owlrun-agent.js";

const MODEL = "owlrun-test-scripted:tiny";
let gw: CliProcess;
let agent: Agent;
beforeAll(async () => {
  gw = await startCli(["gateway", "--port", "0", "--data-dir", tempDir(), "--fake-delay-ms", "20"]);
  agent = await startAgent(gw.url, { models: [MODEL] });
});
afterAll(async () => {
  await agent.close();
  expect(await gw.stop()).toBe(0); // still alive and shuts down cleanly after all of it
});

const tokenLike = fc.oneof(
  fc.string(),
  fc.string().map((s) => `cashuA${s}`),
  fc.string().map((s) => `cashuB${s}`),
  fc.base64String().map((s) => `cashuB${s}`),
  fc.json().map((j) => `cashuA${Buffer.from(j).toString("base64url")}`),
  fc.constant(`cashuB${"A".repeat(70_000)}`),
);
const weirdNumber = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constant(-1),
  fc.constant(1e300),
  fc.constant(2 ** 53 + 1),
  fc.constant(Number.NaN),
);
const chatBody = fc.oneof(
  fc.json(),
  fc.record({
    model: fc.oneof(fc.string(), fc.constant(MODEL), fc.integer()),
    messages: fc.oneof(
      fc.array(fc.record({ role: fc.string(), content: fc.oneof(fc.string(), fc.integer()) })),
      fc.string(),
    ),
    max_tokens: weirdNumber,
    stream: fc.oneof(fc.boolean(), fc.string()),
  }),
);

async function snapshot() {
  const stats = (await (await fetch(`${gw.url}/v1/stats`)).json()) as { jobs_24h: number };
  return stats.jobs_24h;
}

describe("fuzzed inputs", () => {
  it("chat: random tokens, bearer keys and bodies → 4xx, no job, no money moved", async () => {
    const before = await snapshot();
    await fc.assert(
      fc.asyncProperty(tokenLike, fc.option(tokenLike), chatBody, async (token, bearer, body) => {
        const res = await fetch(`${gw.url}/v1/chat/completions`, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            "x-cashu": token.replace(/[^\x20-\x7e]/g, "") || "x",
            ...(bearer ? { authorization: `Bearer ${bearer.replace(/[^\x20-\x7e]/g, "")}` } : {}),
          },
          body: JSON.stringify(body),
        });
        expect(res.status).toBeGreaterThanOrEqual(400);
        expect(res.status).toBeLessThan(500);
        const json = (await res.json()) as any;
        expect(typeof json.error.type).toBe("string");
        expect(json.error.code).toBe(res.status);
      }),
      { numRuns: 150 },
    );
    expect(await snapshot()).toBe(before);
  });

  it("accounts and mint: random amounts and bodies → never 5xx, always JSON, no balance appears", async () => {
    const reg = (await (
      await fetch(`${gw.url}/v1/auth/register`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}",
      })
    ).json()) as any;
    // Lightning top-ups may be valid and get paid by the fake backend: a key of their own.
    const invoices = (await (
      await fetch(`${gw.url}/v1/auth/register`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}",
      })
    ).json()) as any;
    const routes: [string, string][] = [
      ["/v1/balance/withdraw", reg.api_key],
      ["/v1/balance/topup", reg.api_key],
      ["/v1/auth/topup", invoices.api_key],
      ["/mint/v1/swap", ""],
      ["/mint/v1/mint/quote/bolt11", ""],
      ["/mint/v1/melt/quote/bolt11", ""],
      ["/mint/v1/checkstate", ""],
      ["/mint/v1/restore", ""],
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...routes),
        fc.oneof(
          fc.json(),
          fc.record({
            amount_sats: weirdNumber,
            amount: weirdNumber,
            unit: fc.string(),
            token: tokenLike,
            request: fc.string(),
            inputs: fc.json(),
            outputs: fc.json(),
            Ys: fc.json(),
          }),
        ),
        async ([path, key], body) => {
          const res = await fetch(`${gw.url}${path}`, {
            method: "POST",
            headers: {
              "content-type": "application/json",
              ...(key ? { authorization: `Bearer ${key}` } : {}),
            },
            body: typeof body === "string" ? body : JSON.stringify(body),
          });
          // A random body can be a valid request (a 1-sat top-up invoice is fine): never a 5xx, always JSON.
          expect(res.status, `${path} ${JSON.stringify(body).slice(0, 200)}`).toBeLessThan(500);
          expect(res.headers.get("content-type")).toMatch(/application\/json/);
        },
      ),
      { numRuns: 200 },
    );
    const balance = (await (
      await fetch(`${gw.url}/v1/balance`, { headers: { authorization: `Bearer ${reg.api_key}` } })
    ).json()) as any;
    expect(balance.balance_sats).toBe(0);
  });
});
