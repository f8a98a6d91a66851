/**
 * The pure parts of routing: SSE reassembly across frames, the gateway's token count and usage
 * verdict, prompt bounds, the body a node pulls, wire validation and the signup limiter's buckets.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ipBucket, SignupLimiter } from "../../gateway/routing/http.js";
import { nodeRequestBody } from "../../gateway/routing/index.js";
import {
  MAX_FRAME_BYTES,
  NodeMessage,
  parseNodeFrame,
  RegisterBody,
} from "../../gateway/routing/protocol.js";
import { parseTypedFrame } from "../../src/shared/frames.js";
import { MAX_SSE_LINE, SseDecoder } from "../../gateway/routing/sse.js";
import {
  contentTokens,
  judgeUsage,
  measureChunk,
  multiByteAllowance,
  promptBounds,
  relayedBytes,
  toolCallAllowance,
} from "../../gateway/routing/usage.js";
import { registrationBody } from "../support/owlrun-agent.js";

describe("SseDecoder", () => {
  const stream =
    'data: {"a":1}\n\n' + ": keep-alive comment\n\n" + 'data:{"b":2}\r\n\r\n' + "event: x\ndata: [DONE]\n\n";

  it("yields the same payloads however the text is cut into frames", () => {
    const whole = new SseDecoder().push(stream);
    expect(whole).toEqual(['{"a":1}', '{"b":2}', "[DONE]"]);
    for (let size = 1; size <= 9; size++) {
      const d = new SseDecoder();
      const out: string[] = [];
      for (let i = 0; i < stream.length; i += size) out.push(...d.push(stream.slice(i, i + size)));
      out.push(...d.end());
      expect(out, `frames of ${size}`).toEqual(whole);
    }
  });

  it("keeps a \\r\\n split across frames as one line break and flushes a last unterminated line", () => {
    const d = new SseDecoder();
    expect(d.push('data: {"x":1}\r')).toEqual(['{"x":1}']);
    expect(d.push('\ndata: {"y":2}')).toEqual([]);
    expect(d.end()).toEqual(['{"y":2}']);
  });

  it("refuses an endless line", () => {
    const d = new SseDecoder();
    expect(() => d.push("data: " + "x".repeat(MAX_SSE_LINE + 1))).toThrow(/exceeded/);
  });
});

describe("usage", () => {
  it("counts one token per choice that carries content, reasoning, tool calls or text", () => {
    expect(contentTokens({ choices: [{ delta: { content: "hi" } }] })).toBe(1);
    expect(contentTokens({ choices: [{ delta: { content: "" } }] })).toBe(0);
    expect(contentTokens({ choices: [{ delta: { role: "assistant" } }] })).toBe(0);
    expect(contentTokens({ choices: [{ text: "x" }, { text: "y" }] })).toBe(2);
    expect(contentTokens({ choices: [{ delta: { reasoning: "hmm" } as never }] })).toBe(1);
    expect(contentTokens({ choices: [], usage: { completion_tokens: 9 } })).toBe(0);
  });

  it("allows multi-byte text up to a token per byte beyond the per-delta count, ASCII nothing", () => {
    expect(multiByteAllowance({ choices: [{ delta: { content: "hello world" } }] })).toBe(0);
    expect(multiByteAllowance({ choices: [{ delta: { content: "é" } }] })).toBe(1); // 2 bytes
    expect(multiByteAllowance({ choices: [{ delta: { content: "字" } }] })).toBe(2); // 3 bytes
    expect(multiByteAllowance({ choices: [{ delta: { content: "🦉" } }] })).toBe(3); // 4 bytes
    expect(multiByteAllowance({ choices: [{ delta: { content: "a\uFFFDb" } }] })).toBe(3); // 3 + ASCII − 1
    expect(multiByteAllowance({ choices: [{ text: "字" }, { delta: { content: "x" } }] })).toBe(2);
    expect(multiByteAllowance({ choices: [], usage: { completion_tokens: 9 } })).toBe(0);
  });

  it("allows a tool call's relayed name and argument bytes plus its markers, nothing else", () => {
    const call = (id: string | undefined, name: string, args: string) => ({
      choices: [
        {
          delta: {
            tool_calls: [
              { index: 0, ...(id ? { id, type: "function" } : {}), function: { name, arguments: args } },
            ],
          },
        },
      ],
    });
    // A whole call in one delta (Ollama): 8 + 21 bytes + 16 markers − the 1 already counted.
    expect(toolCallAllowance(call("call_1", "get_time", '{"city":"Paris, 字"}'))).toBe(8 + 21 + 16 - 1);
    // A later fragment of the same call: only its argument bytes.
    expect(toolCallAllowance(call(undefined, "", '"x"}'))).toBe(3);
    expect(toolCallAllowance({ choices: [{ delta: { content: "hi" } }] })).toBe(0);
    expect(toolCallAllowance({ choices: [{ delta: { tool_calls: [] } as never }] })).toBe(0);
  });

  it("counts tool definitions toward the prompt bound", () => {
    const messages = [{ role: "user", content: "hi" }];
    const tools = [{ type: "function", function: { name: "f", description: "d".repeat(4000) } }];
    const without = promptBounds({ messages });
    const withTools = promptBounds({ messages, tools });
    expect(withTools.cap - without.cap).toBeGreaterThan(2000 + 128);
    expect(withTools.estimate - without.estimate).toBeGreaterThan(1000);
  });

  const prompt = { cap: 50, estimate: 20 };
  it("believes byte-token reports within the multi-byte allowance, not beyond", () => {
    // 56 deltas of gibberish carrying 100 tokens: 56 × 1.5 + 4 = 88 alone would dispute it.
    const judge = (completionTokens: number, multiByte: number) =>
      judgeUsage({
        reported: { promptTokens: 1, completionTokens },
        counted: 56,
        multiByte,
        maxTokens: 100,
        prompt,
      });
    expect(judge(100, 0)).toMatchObject({ disputed: true, billable: { completionTokens: 56 } });
    expect(judge(100, 12)).toEqual({ billable: { promptTokens: 1, completionTokens: 100 }, disputed: false });
    const over = judge(101, 12);
    expect(over).toMatchObject({ disputed: true, billable: { completionTokens: 56 } });
    expect(over.note).toMatch(/\+12 allowed for multi-byte text/);
  });
  it("never bills more completion tokens than bytes relayed, whatever the multi-byte allowance", () => {
    // Ten deltas of one CJK character: 30 bytes relayed, 20 tokens of multi-byte allowance.
    const chunk = { choices: [{ delta: { content: "字" } }] };
    expect(relayedBytes(chunk)).toBe(3);
    expect(relayedBytes({ choices: [{ delta: { content: "ab" } }, { text: "🦉" }] })).toBe(6);
    const judge = (completionTokens: number) =>
      judgeUsage({
        reported: { promptTokens: 1, completionTokens },
        counted: 10,
        multiByte: 10 * multiByteAllowance(chunk),
        relayed: 10 * relayedBytes(chunk),
        maxTokens: 1_000_000,
        prompt,
      });
    // 10 × 1.5 + 4 + 20 = 39 used to pass whole: more tokens than bytes the buyer received.
    expect(judge(39)).toMatchObject({ disputed: true, billable: { completionTokens: 10 } });
    expect(judge(33).billable.completionTokens).toBe(30);
    // An honest byte-token report (a token per byte) is still believed as is.
    expect(judge(30)).toEqual({ billable: { promptTokens: 1, completionTokens: 30 }, disputed: false });
  });

  it("believes a report within tolerance, clamped to max_tokens", () => {
    const v = judgeUsage({
      reported: { promptTokens: 30, completionTokens: 12 },
      counted: 10,
      maxTokens: 100,
      prompt,
    });
    expect(v).toEqual({ billable: { promptTokens: 30, completionTokens: 12 }, disputed: false });
    const clamped = judgeUsage({
      reported: { promptTokens: 30, completionTokens: 11 },
      counted: 10,
      maxTokens: 10,
      prompt,
    });
    expect(clamped.billable.completionTokens).toBe(10);
    // 10 × 1.5 + 4 = 19 is the edge.
    expect(
      judgeUsage({ reported: { promptTokens: 1, completionTokens: 19 }, counted: 10, maxTokens: 99, prompt })
        .disputed,
    ).toBe(false);
  });

  it("bills its own count and flags the node when the report is inflated", () => {
    const v = judgeUsage({
      reported: { promptTokens: 30, completionTokens: 20 },
      counted: 10,
      maxTokens: 100,
      prompt,
    });
    expect(v.billable.completionTokens).toBe(10);
    expect(v.disputed).toBe(true);
    expect(v.note).toMatch(/reported 20 completion tokens, counted 10/);
  });

  it("caps prompt tokens by the request size and flags reports above it", () => {
    const v = judgeUsage({
      reported: { promptTokens: 5000, completionTokens: 1 },
      counted: 1,
      maxTokens: 10,
      prompt,
    });
    expect(v.billable.promptTokens).toBe(50);
    expect(v.disputed).toBe(true);
  });

  it("without a report bills the count and the prompt estimate; under-reporting is not a dispute", () => {
    expect(judgeUsage({ counted: 7, maxTokens: 5, prompt })).toEqual({
      billable: { promptTokens: 20, completionTokens: 5 },
      disputed: false,
    });
    expect(
      judgeUsage({ reported: { promptTokens: 0, completionTokens: 0 }, counted: 7, maxTokens: 50, prompt })
        .disputed,
    ).toBe(false);
  });

  it("derives prompt bounds from the UTF-8 size of the messages", () => {
    const ascii = promptBounds({ messages: [{ role: "user", content: "x".repeat(100) }] });
    const cjk = promptBounds({ messages: [{ role: "user", content: "字".repeat(100) }] });
    expect(cjk.cap).toBeGreaterThan(ascii.cap + 90); // 3 bytes a character
    expect(ascii.cap).toBeGreaterThan(ascii.estimate);
  });
});

describe("the body a node pulls", () => {
  it("forces streaming with usage, caps max_tokens and drops gateway-only fields", () => {
    const body = nodeRequestBody({
      model: "m",
      kind: "chat",
      maxTokens: 64,
      body: {
        model: "m",
        messages: [{ role: "user", content: "hi" }],
        max_tokens: 5000,
        max_completion_tokens: 5000,
        stream: false,
        n: 3,
        user: "buyer-42",
        provider: { only: ["x"] },
        models: ["m", "m2"],
        temperature: 0.2,
      },
    });
    expect(body).toEqual({
      model: "m",
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 64,
      max_completion_tokens: 64,
      stream: true,
      stream_options: { include_usage: true },
      temperature: 0.2,
    });
  });

  it("turns a completions prompt into one chat message (Owlrun nodes only speak chat)", () => {
    const body = nodeRequestBody({
      model: "m",
      kind: "completions",
      maxTokens: 8,
      body: { model: "m", prompt: "Once upon", echo: true },
    });
    expect(body.messages).toEqual([{ role: "user", content: "Once upon" }]);
    expect(body).not.toHaveProperty("prompt");
    expect(body).not.toHaveProperty("echo");
  });
});

describe("wire validation", () => {
  it("accepts the Owlrun registration body, Go zero values included", () => {
    const r = RegisterBody.safeParse(registrationBody("owlr_prov_k", "node-1", ["qwen2.5:0.5b"]));
    expect(r.success).toBe(true);
    expect(r.data?.lightning_address).toBeUndefined();
    expect(RegisterBody.safeParse({ node_id: "n", api_key: "k", models: null }).data?.models).toEqual([]);
  });

  it("checks the Lightning address and the payout threshold", () => {
    const base = registrationBody("k", "n", ["m"]);
    expect(
      RegisterBody.safeParse({ ...base, lightning_address: "Alice@Example.com" }).data?.lightning_address,
    ).toBe("alice@example.com");
    expect(RegisterBody.safeParse({ ...base, lightning_address: "alice@127.0.0.1:8080" }).success).toBe(true);
    expect(RegisterBody.safeParse({ ...base, lightning_address: "not an address" }).success).toBe(false);
    expect(RegisterBody.safeParse({ ...base, lightning_address: "a@b" }).success).toBe(false);
    expect(RegisterBody.safeParse({ ...base, redeem_threshold_sats: 5 }).success).toBe(false);
    expect(RegisterBody.safeParse({ ...base, redeem_threshold_sats: 5000 }).success).toBe(true);
    expect(RegisterBody.safeParse({ ...base, node_id: "bad\nid" }).success).toBe(false);
  });

  it("classifies frames: known, unknown type (ignored), invalid", () => {
    expect(parseNodeFrame('{"type":"accept","job_id":"j"}')).toMatchObject({ kind: "message" });
    expect(parseNodeFrame('{"type":"gpu_stats","x":1}')).toEqual({ kind: "ignore", type: "gpu_stats" });
    expect(parseNodeFrame("{nope")).toMatchObject({ kind: "invalid" });
    expect(parseNodeFrame("[1,2]")).toMatchObject({ kind: "invalid" });
    expect(parseNodeFrame('{"job_id":"j"}')).toMatchObject({ kind: "invalid" });
    expect(parseNodeFrame('{"type":"proxy_chunk","job_id":"j"}')).toMatchObject({ kind: "invalid" });
    expect(parseNodeFrame('{"type":"heartbeat","gpu_util_pct":"hot"}')).toMatchObject({ kind: "invalid" });
  });
});

describe("signup limiter", () => {
  it("buckets IPv6 by /64 and IPv4-mapped addresses as IPv4", () => {
    expect(ipBucket("::ffff:10.0.0.7")).toBe("10.0.0.7");
    expect(ipBucket("2001:db8:1:2::5")).toBe(ipBucket("2001:0db8:0001:0002:ffff::9"));
    expect(ipBucket("2001:db8:1:2::5")).not.toBe(ipBucket("2001:db8:1:3::5"));
  });

  it("allows n per hour per bucket and says how long to wait", () => {
    const l = new SignupLimiter(2);
    const t = 1_000_000;
    expect(l.take("1.2.3.4", t)).toBeUndefined();
    expect(l.take("1.2.3.4", t + 1)).toBeUndefined();
    expect(l.take("1.2.3.4", t + 2)).toBe(3600);
    expect(l.take("5.6.7.8", t + 2)).toBeUndefined();
    expect(l.take("1.2.3.4", t + 3_600_001)).toBeUndefined();
  });
});

describe("SseDecoder on random cuts", () => {
  it("any cut of any stream of lines (LF, CR, CRLF, comments, blank lines) yields what the whole text yields", () => {
    const line = fc.oneof(
      fc.string({ maxLength: 12 }).map((t) => `data: ${t.replace(/[\r\n]/g, "")}`),
      fc.constant(": comment"),
      fc.constant(""),
      fc.constant("event: x"),
    );
    const eol = fc.constantFrom("\n", "\r", "\r\n");
    fc.assert(
      fc.property(
        fc.array(fc.tuple(line, eol), { maxLength: 20 }),
        fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 10 }),
        (lines, cuts) => {
          const text = lines.map(([l, e]) => l + e).join("");
          const whole = new SseDecoder();
          const expected = [...whole.push(text), ...whole.end()];
          const d = new SseDecoder();
          const out: string[] = [];
          for (let i = 0, k = 0; i < text.length; k++) {
            const n = cuts[k % cuts.length]!;
            out.push(...d.push(text.slice(i, i + n)));
            i += n;
          }
          out.push(...d.end());
          expect(out).toEqual(expected);
        },
      ),
    );
  });
});

describe("proxy_chunk fast path", () => {
  it("accepts and refuses exactly what the schema does", () => {
    const known = new Set(["heartbeat", "pong", "accept", "reject", "proxy_chunk", "proxy_done"]);
    const frame = fc.record(
      {
        type: fc.constantFrom("proxy_chunk", "accept"),
        job_id: fc.oneof(fc.string({ maxLength: 140 }), fc.integer(), fc.constant(null)),
        data: fc.oneof(
          fc.string({ maxLength: 30 }),
          fc.integer(),
          fc.constant("x".repeat(MAX_FRAME_BYTES + 1)),
        ),
        extra: fc.string({ maxLength: 5 }),
      },
      { requiredKeys: ["type"] },
    );
    fc.assert(
      fc.property(frame, (f) => {
        const raw = JSON.stringify(f);
        const fast = parseNodeFrame(raw);
        const schema = parseTypedFrame(raw, known, NodeMessage);
        expect(fast.kind).toBe(schema.kind);
        if (fast.kind === "message" && schema.kind === "message") expect(fast.msg).toEqual(schema.msg);
      }),
      { numRuns: 300 },
    );
  });
});

describe("one-pass chunk measure (the relay's per-token path)", () => {
  it("gives exactly the reference count, allowance and relayed bytes, whatever the chunk", () => {
    // Text mixing ASCII, 2-, 3- and 4-byte characters and lone surrogates (3 bytes once encoded).
    const text = fc.oneof(
      fc.string({ maxLength: 8 }),
      fc.string({ unit: "grapheme", maxLength: 4 }),
      fc.constantFrom("", "é", "字", "🦉", "\ud83e", "\udd89x", "a\uFFFDb"),
    );
    const call = fc.record(
      {
        index: fc.integer({ min: 0, max: 3 }),
        id: fc.string({ maxLength: 6 }),
        function: fc.record({ name: text, arguments: text }, { requiredKeys: [] }),
      },
      { requiredKeys: [] },
    );
    const delta = fc.oneof(
      fc.record(
        {
          role: fc.constant("assistant"),
          content: fc.oneof(text, fc.constant(null)),
          reasoning: text,
          reasoning_content: text,
          tool_calls: fc.oneof(fc.array(call, { maxLength: 2 }), text),
        },
        { requiredKeys: [] },
      ),
      fc.constant(null),
      fc.integer(),
    );
    const choice = fc.oneof(
      fc.record({ index: fc.nat(3), delta, text, finish_reason: fc.constant(null) }, { requiredKeys: [] }),
      fc.constant(null),
    );
    const chunk = fc.record(
      { choices: fc.oneof(fc.array(choice, { maxLength: 3 }), fc.constant("x")) },
      {
        requiredKeys: [],
      },
    );
    fc.assert(
      fc.property(chunk, (c) => {
        const chunk = c as Parameters<typeof measureChunk>[0];
        expect(measureChunk(chunk)).toEqual({
          tokens: contentTokens(chunk),
          allowance: multiByteAllowance(chunk) + toolCallAllowance(chunk),
          bytes: relayedBytes(chunk),
        });
      }),
      { numRuns: 2000 },
    );
  });
});
