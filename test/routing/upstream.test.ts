/**
 * Upstream providers at the routing level: the upstreams file's one schema (and that its errors
 * never quote a key), the routing rules applied to upstreams (preferences, free jobs, 429
 * cool-down), the attempt's clocks and caps on an upstream's stream (first token, stall,
 * max_tokens), and that a node may not pose as an upstream.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  NoProviderError,
  parseUpstreams,
  readUpstreamsFile,
  UpstreamConfigError,
  upstreamPriceFloors,
} from "../../gateway/routing/index.js";
import { retryAfterMs } from "../../gateway/routing/upstream.js";
import { runCli } from "../support/cli-process.js";
import { register } from "../support/owlrun-agent.js";
import { type OpenAIUpstream, refusedBaseUrl, startOpenAIUpstream } from "../support/openai-upstream.js";
import { request, startGateway, type TestGateway, tempDir, text, waitUntil } from "./harness.js";

const KEY = "sk-routing-SECRET-51b2c3d4e5f60718293a4b5c";
const PRICE = { per_m_input_usd: 1, per_m_output_usd: 2 };

const doc = (
  over: Record<string, unknown> = {},
  models: Record<string, unknown> = { m: { price: PRICE } },
) => ({
  upstreams: [{ name: "u", base_url: "https://api.example.com/v1/", api_key: KEY, models, ...over }],
});

/** The error message of parsing `raw`, checked to be an UpstreamConfigError that never quotes the key. */
function problem(raw: unknown, env: Record<string, string> = {}): string {
  try {
    parseUpstreams(raw, "upstreams", env);
  } catch (err) {
    expect(err).toBeInstanceOf(UpstreamConfigError);
    const message = (err as Error).message;
    expect(message).not.toContain(KEY);
    return message;
  }
  throw new Error("parsed without error");
}

describe("the upstreams file", () => {
  it("resolves keys, renames and prices (price, or cost plus margin), and trims the base URL", () => {
    const [u] = parseUpstreams(
      doc(
        { api_key: undefined, api_key_env: "UP_KEY", margin_pct: 50 },
        {
          chat: { upstream_model: "vendor/chat", price: PRICE },
          marked: { cost: { per_m_input_usd: 2, per_m_output_usd: 4 } },
          vec: { embeddings: true, price: { per_m_input_usd: 1, per_m_output_usd: 0 } },
        },
      ),
      "t",
      { UP_KEY: KEY },
    );
    expect(u!.apiKey).toBe(KEY);
    expect(u!.baseUrl).toBe("https://api.example.com/v1");
    expect([...u!.chat]).toEqual([
      ["chat", "vendor/chat"],
      ["marked", "marked"],
    ]);
    expect([...u!.embeddings]).toEqual([["vec", "vec"]]);
    expect(u!.rates.marked).toEqual({ per_m_input_usd: 3, per_m_output_usd: 6 });
  });

  it("an upstream's price is a floor: two upstreams of one model give the higher price of each kind", () => {
    const specs = parseUpstreams({
      upstreams: [
        {
          name: "a",
          base_url: "http://127.0.0.1:1/v1",
          models: { m: { price: { per_m_input_usd: 1, per_m_output_usd: 9 } } },
        },
        {
          name: "b",
          base_url: "http://127.0.0.1:2/v1",
          models: { m: { price: { per_m_input_usd: 3, per_m_output_usd: 2 } } },
        },
      ],
    });
    expect(upstreamPriceFloors(specs).m).toEqual({ per_m_input_usd: 3, per_m_output_usd: 9 });
  });

  it("refuses what would serve wrongly, naming the problem and never the key", () => {
    expect(problem(doc({ api_key_env: "NOPE" }))).toMatch(/api_key or api_key_env, not both/);
    expect(problem(doc({ api_key: undefined, api_key_env: "UNSET_KEY_VAR" }))).toMatch(
      /environment variable UNSET_KEY_VAR is not set/,
    );
    expect(problem(doc({}, { m: {} }))).toMatch(/exactly one of price/);
    expect(problem(doc({}, { m: { price: PRICE, cost: PRICE } }))).toMatch(/exactly one of price/);
    expect(problem(doc({}, { m: { cost: PRICE } }))).toMatch(/margin_pct/);
    expect(problem(doc({}, {}))).toMatch(/at least one model/);
    expect(problem(doc({ base_url: `https://user:${KEY}@api.example.com/v1` }))).toMatch(/credentials/);
    expect(problem(doc({ base_url: "ftp://api.example.com" }))).toMatch(/http\(s\) URL/);
    expect(problem(doc({}, { m: { price: { per_m_input_usd: -1, per_m_output_usd: 1 } } }))).toMatch(
      /per_m_input_usd/,
    );
    expect(problem(doc({ apikey: KEY }))).toMatch(/apikey/);
    expect(problem(doc({ api_key: 42 }))).toMatch(/api_key/);
    const twice = doc();
    twice.upstreams.push({ ...twice.upstreams[0]! });
    expect(problem(twice)).toMatch(/unique/);
  });

  it("a file that is not JSON is refused without quoting it (it may hold a key)", () => {
    const path = join(tempDir(), "upstreams.json");
    writeFileSync(path, `{"upstreams": [{"api_key": "${KEY}" oops}]}`);
    expect(() => readUpstreamsFile(path)).toThrow(/not valid JSON/);
    try {
      readUpstreamsFile(path);
    } catch (err) {
      expect((err as Error).message).not.toContain(KEY);
    }
  });

  it("owlrun-mcp gateway --upstream with a bad file exits 2 with the reason, before listening, key unsaid", async () => {
    const path = join(tempDir(), "upstreams.json");
    writeFileSync(path, JSON.stringify(doc({}, { m: { cost: PRICE } })));
    const r = await runCli(["gateway", "--port", "0", "--data-dir", tempDir(), "--upstream", path]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/upstream file .*margin_pct/);
    expect(r.stderr).not.toContain(KEY);
    expect(r.stdout).not.toMatch(/listening/);
  });

  it("the example in docs/integrations.md is a valid upstreams file", () => {
    const md = readFileSync(new URL("../../docs/integrations.md", import.meta.url), "utf8");
    const example = [...md.matchAll(/```json\n([\s\S]*?)```/g)]
      .map((m) => JSON.parse(m[1]!))
      .find((j) => "upstreams" in j);
    const [u] = parseUpstreams(example, "docs", { OPENROUTER_API_KEY: KEY });
    expect(u!.chat.get("gpt-4o-mini")).toBe("openai/gpt-4o-mini");
    expect(u!.rates["gpt-4o-mini"]!.per_m_output_usd).toBeCloseTo(0.72);
  });

  it("Retry-After: delta-seconds or an HTTP date", () => {
    expect(retryAfterMs("3")).toBe(3_000);
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4_000)).toBe(6_000);
    expect(retryAfterMs("soon")).toBeUndefined();
    expect(retryAfterMs(null)).toBeUndefined();
  });
});

describe("upstreams in the dispatcher", () => {
  let up: OpenAIUpstream;
  let other: OpenAIUpstream;
  let gw: TestGateway;

  beforeAll(async () => {
    up = await startOpenAIUpstream(KEY);
    other = await startOpenAIUpstream(KEY);
    gw = await startGateway({
      idleTimeoutMs: 400,
      upstreams: parseUpstreams({
        upstreams: [
          { name: "up", base_url: up.baseUrl, api_key: KEY, models: { m: { price: PRICE } } },
          { name: "other", base_url: other.baseUrl, api_key: KEY, models: { m: { price: PRICE } } },
          { name: "down", base_url: await refusedBaseUrl(), models: { m: { price: PRICE } } },
        ],
      }),
    });
  });
  afterAll(async () => {
    await gw?.close();
    await up?.close();
    await other?.close();
  });
  beforeEach(() => {
    up.queue.length = 0;
    other.queue.length = 0;
  });

  it("honours the routing preferences by upstream name: only, ignore, order, no fallbacks", async () => {
    const job = await gw.routing.dispatcher.dispatch(
      request("m", { preferences: { order: ["upstream:other"], ignore: ["upstream:down"] } }),
    );
    expect(job.nodeId).toBe("upstream:other");
    expect(await text(job)).toBe("Hello from the upstream.");
    const only = await gw.routing.dispatcher.dispatch(
      request("m", { preferences: { only: ["upstream:up"] } }),
    );
    expect(only.nodeId).toBe("upstream:up");
    await text(only);
    const err = await gw.routing.dispatcher
      .dispatch(request("m", { preferences: { order: ["upstream:down"], allowFallbacks: false } }))
      .catch((e) => e);
    expect(err).toBeInstanceOf(NoProviderError);
    expect(err.message).toMatch(/upstream:down unreachable: ECONNREFUSED/);
  });

  it("free-tier jobs never go upstream (they move no sats; an upstream bills)", async () => {
    const err = await gw.routing.dispatcher.dispatch(request("m", { free: true })).catch((e) => e);
    expect(err).toBeInstanceOf(NoProviderError);
    expect(err.message).toMatch(/free-tier/);
  });

  it("headers but no first token within the clock: the job moves on", async () => {
    up.queue.push({ action: "hang-after-headers" });
    const job = await gw.routing.dispatcher.dispatch(
      request("m", { preferences: { order: ["upstream:up", "upstream:other"], ignore: ["upstream:down"] } }),
    );
    expect(job.nodeId).toBe("upstream:other");
    await text(job);
  });

  it("a stream that stalls after its first token fails (unpaid), as a stalled node's does", async () => {
    // one delta every 700 ms: the first within the first-token clock, the second past the 400 ms idle clock
    up.queue.push({ words: ["one", " two", " three"], delayMs: 700 });
    const job = await gw.routing.dispatcher.dispatch(
      request("m", { preferences: { only: ["upstream:up"] } }),
    );
    expect(job.nodeId).toBe("upstream:up");
    await text(job);
    const outcome = await job.outcome;
    expect(outcome.status).toBe("failed");
    expect(outcome.error).toMatch(/stalled/);
  });

  it("max_tokens is enforced on an upstream's stream: it is cut and billed at most what was paid for", async () => {
    up.queue.push({
      words: Array.from({ length: 30 }, (_, i) => ` w${i}`),
      usage: { prompt_tokens: 5, completion_tokens: 30 },
    });
    const job = await gw.routing.dispatcher.dispatch(
      request("m", { maxTokens: 4, preferences: { only: ["upstream:up"] } }),
    );
    expect(await text(job)).toBe(" w0 w1 w2 w3");
    const outcome = await job.outcome;
    expect(outcome.status).toBe("completed");
    expect(outcome.billableUsage.completionTokens).toBe(4);
    expect(up.seen.at(-1)!.body.max_tokens).toBe(4);
  });

  it("a buyer who goes away mid-stream: the upstream request is aborted, the job ends cancelled", async () => {
    up.queue.push({ words: Array.from({ length: 50 }, (_, i) => ` w${i}`), delayMs: 30 });
    const buyer = new AbortController();
    const job = await gw.routing.dispatcher.dispatch(
      request("m", { signal: buyer.signal, preferences: { only: ["upstream:up"] } }),
    );
    let got = 0;
    for await (const chunk of job.chunks) {
      if (chunk.choices?.[0]?.delta?.content) got++;
      if (got === 2) buyer.abort();
    }
    const outcome = await job.outcome;
    expect(outcome.status).toBe("cancelled");
    expect(outcome.countedCompletionTokens).toBeLessThan(50);
    await waitUntil(() => up.closed > 0, 3_000, "the upstream to see its request closed");
  });

  it("a node may not register as an upstream (upstream:… ids are reserved)", async () => {
    const signup = await fetch(`${gw.url}/v1/gateway/signup`, { method: "POST" });
    const { api_key } = (await signup.json()) as { api_key: string };
    const res = await register(gw.url, api_key, "upstream:up", ["m"]);
    expect(res.status).toBe(400);
    expect(JSON.stringify(await res.json())).toMatch(/may not start with upstream:/);
  });
});
