/**
 * What an attempt hands the API for each relayed SSE chunk, fed frame by frame as a node's
 * connection would: hostile shapes never reach the response writers, and the counters that bill
 * the job (tokens, relayed bytes) are the same however the node cuts its frames.
 */
import { describe, expect, it } from "vitest";
import { Attempt } from "../../gateway/routing/attempt.js";
import type { GatewayMessage } from "../../gateway/routing/protocol.js";
import type { JobOutcome, StreamChunk } from "../../gateway/routing/types.js";

function attempt(maxTokens = 100) {
  const sent: GatewayMessage[] = [];
  let outcome: JobOutcome | undefined;
  const a = new Attempt({
    wireId: "w1",
    node: { nodeId: "n1", keyHash: "k", send: (m) => sent.push(m) },
    model: "m",
    body: {},
    maxTokens,
    prompt: { cap: 50, estimate: 10 },
    acceptTimeoutMs: 60_000,
    firstByteTimeoutMs: 60_000,
    idleTimeoutMs: 60_000,
    onEnd: (_a, o) => (outcome = o),
  });
  return { a, sent, outcome: () => outcome };
}

async function drain(a: Attempt): Promise<StreamChunk[]> {
  const out: StreamChunk[] = [];
  for await (const c of a.chunks()) out.push(c);
  return out;
}

const event = (obj: unknown) => `data: ${JSON.stringify(obj)}\n\n`;

describe("attempt chunks", () => {
  it("drops choices that are not objects (null, strings, a non-array choices) before any consumer sees them", async () => {
    const { a, outcome } = attempt();
    a.offer();
    a.onAccept();
    a.onChunk(event({ choices: [null, { index: 0, delta: { content: "hi" } }, "x", [1]] }));
    a.onChunk(event({ choices: "x", usage: { prompt_tokens: 3, completion_tokens: 1 } }));
    a.onDone();
    const chunks = await drain(a);
    for (const c of chunks) {
      expect(Array.isArray(c.choices)).toBe(true);
      for (const ch of c.choices!)
        expect(typeof ch === "object" && ch !== null && !Array.isArray(ch)).toBe(true);
    }
    expect(chunks[0]!.choices).toEqual([{ index: 0, delta: { content: "hi" } }]);
    expect(outcome()).toMatchObject({ status: "completed", countedCompletionTokens: 1 });
    expect(outcome()!.billableUsage.completionTokens).toBe(1);
  });

  it("bills the same however the stream is cut into frames (one per token or 23 characters), usage bounded by the bytes relayed", async () => {
    const words = ["Hé", "llo", " 🦉", " wörld", "!"];
    const text =
      words
        .map((w) =>
          event({ id: "c", object: "chat.completion.chunk", choices: [{ index: 0, delta: { content: w } }] }),
        )
        .join("") +
      // An inflated report: more tokens than bytes were relayed.
      event({ choices: [], usage: { prompt_tokens: 5, completion_tokens: 400 } }) +
      "data: [DONE]\n\n";
    const relayedBytes = Buffer.byteLength(words.join(""), "utf8");
    const outcomes: JobOutcome[] = [];
    for (const cut of [text.length, 23, 1]) {
      const { a, outcome } = attempt();
      a.offer();
      for (let i = 0; i < text.length; i += cut) a.onChunk(text.slice(i, i + cut));
      a.onDone();
      const chunks = await drain(a);
      expect(chunks.map((c) => c.choices?.[0]?.delta?.content).filter(Boolean)).toEqual(words);
      outcomes.push(outcome()!);
    }
    for (const o of outcomes) {
      expect(o.countedCompletionTokens).toBe(words.length);
      // 400 > relayed bytes: disputed, billed by the gateway's own count.
      expect(o.usageDisputed).toBe(true);
      expect(o.billableUsage.completionTokens).toBe(words.length);
      expect(o.billableUsage.completionTokens).toBeLessThanOrEqual(relayedBytes);
    }
  });

  it("believes an honest byte-token report up to the bytes relayed, the same for every cut", async () => {
    const words = ["🦉", "🦉", "字"];
    const bytes = Buffer.byteLength(words.join(""), "utf8"); // 11
    const text =
      words.map((w) => event({ choices: [{ index: 0, delta: { content: w } }] })).join("") +
      event({ choices: [], usage: { prompt_tokens: 5, completion_tokens: bytes } });
    for (const cut of [text.length, 23, 7]) {
      const { a, outcome } = attempt();
      a.offer();
      for (let i = 0; i < text.length; i += cut) a.onChunk(text.slice(i, i + cut));
      a.onDone();
      await drain(a);
      expect(outcome()).toMatchObject({ usageDisputed: false });
      expect(outcome()!.billableUsage.completionTokens).toBe(bytes);
    }
  });
});
