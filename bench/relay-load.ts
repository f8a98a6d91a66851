/**
 * The load side of bench/relay.ts, in its own process so the gateway's CPU is its own: a scripted
 * Owlrun node streaming TOKENS tokens per job at RATE tokens/s in proxy_chunk frames of FRAME
 * characters, and STREAMS concurrent clients reading the SSE answers. Prints one JSON line.
 *
 *   tsx bench/relay-load.ts <gatewayUrl> <keys,comma,separated> <streams> <tokens> <rate> <frameChars>
 */
import { pct } from "./results.js";
import { startAgent } from "../test/support/owlrun-agent.js";

const [url, keyList, streamsArg, tokensArg, rateArg, frameArg] = process.argv.slice(2);
const keys = keyList!.split(",");
const STREAMS = Number(streamsArg);
const TOKENS = Number(tokensArg);
const RATE = Number(rateArg);
const FRAME = Number(frameArg);
const MODEL = "owlrun-bench:relay";

// BENCH_NODE_URL: the node connects to another gateway process than the clients (bench/cluster-relay.ts).
const agent = await startAgent(process.env.BENCH_NODE_URL ?? url!, {
  models: [MODEL],
  heartbeatMs: 0,
  job: {
    words: Array.from({ length: TOKENS }, (_, i) => ` w${i % 10}`),
    delayMs: 1000 / RATE,
    frameChars: FRAME,
  },
});
await new Promise((r) => setTimeout(r, 200));

interface StreamResult {
  firstMs: number;
  tokens: number;
  maxGapMs: number;
  /** refused (e.g. 503: the node did not accept in time on an overloaded box) */
  failed?: boolean;
}

const refused: StreamResult = { firstMs: -1, tokens: 0, maxGapMs: 0, failed: true };

/** A connection reset on an overloaded box counts as a refused stream, like a 503. */
const stream = (i: number): Promise<StreamResult> => streamOnce(i).catch(() => refused);

async function streamOnce(i: number): Promise<StreamResult> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${keys[i % keys.length]}` },
    body: JSON.stringify({
      model: MODEL,
      stream: true,
      max_tokens: TOKENS + 10,
      messages: [{ role: "user", content: "hi" }],
    }),
  });
  if (res.status !== 200) {
    await res.arrayBuffer();
    return refused;
  }
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let firstMs = -1;
  let last = 0;
  let maxGapMs = 0;
  let tokens = 0;
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf("\n\n")) >= 0) {
      const ev = buf.slice(0, nl);
      buf = buf.slice(nl + 2);
      if (!ev.startsWith("data: ") || ev === "data: [DONE]") continue;
      const c = JSON.parse(ev.slice(6)) as { choices?: { delta?: { content?: string } }[] };
      if (!c.choices?.[0]?.delta?.content) continue;
      const now = performance.now();
      if (firstMs < 0) firstMs = now - t0;
      else maxGapMs = Math.max(maxGapMs, now - last);
      last = now;
      tokens++;
    }
  }
  return { firstMs, tokens, maxGapMs };
}

console.log("START");
const t0 = performance.now();
// Streams start spread over one second, as independent clients would.
const results = await Promise.all(
  Array.from({ length: STREAMS }, (_, i) =>
    new Promise((r) => setTimeout(r, (i * 1000) / STREAMS)).then(() => stream(i)),
  ),
);
const ms = performance.now() - t0;
const served = results.filter((r) => !r.failed);
const firsts = served.map((r) => r.firstMs);
// A stall: a gap between two tokens of a stream longer than 5 token periods.
const stallMs = (5 * 1000) / RATE;
console.log(
  `RESULT ${JSON.stringify({
    tokens: results.reduce((s, r) => s + r.tokens, 0),
    ms,
    first_p50_ms: pct(firsts, 50),
    first_p99_ms: pct(firsts, 99),
    stalls: served.filter((r) => r.maxGapMs > stallMs).length,
    max_gap_ms: Math.max(0, ...served.map((r) => r.maxGapMs)),
    failed: results.length - served.length,
  })}`,
);
await agent.close();
process.exit(0);
