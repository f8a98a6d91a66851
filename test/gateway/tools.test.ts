/**
 * Tool calling through the gateway: a scripted Owlrun node that calls tools (whole, as Ollama sends
 * them, or in OpenAI-style fragments), the official `openai` client streamed and not, and the
 * `ollama` client. The definitions reach the node unchanged, the calls reach the client byte for byte,
 * and an honest node's tool-call token report is billed, not disputed.
 */
import { Ollama } from "ollama";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";
import { fundedPurse, type Purse } from "../support/purse.js";
import { type Agent, honestToolTokens, startAgent } from "../support/owlrun-agent.js";

const WHOLE = "owlrun-test-scripted:tiny";
const FRAGMENTS = "owlrun-test-fragments:tiny";
const INFLATE = "owlrun-test-inflate:tiny";
const CALLS = [
  {
    id: "call_w1",
    name: "get_weather",
    arguments: '{"city":"Zürich","note":"a \\"quoted\\" \\\\ path\\n🦉"}',
  },
  { id: "call_w2", name: "get_time", arguments: '{"tz":"Europe/Zurich"}' },
];
const TOOLS = [
  {
    type: "function" as const,
    function: {
      name: "get_weather",
      description: "Weather in a city",
      parameters: {
        type: "object",
        properties: { city: { type: "string" }, note: { type: "string" } },
        required: ["city"],
      },
    },
  },
  {
    type: "function" as const,
    function: { name: "get_time", parameters: { type: "object", properties: { tz: { type: "string" } } } },
  },
];

/** The ollama client's Tool type is narrower than JSON Schema; the same definitions. */
const OLLAMA_TOOLS = TOOLS as unknown as import("ollama").Tool[];

let gw: CliProcess;
let mintUrl: string;
let purse: Purse;
let agent: Agent;

const token = (amount: number) => purse.token(amount);
const receive = (t: string) => purse.receive(t);

beforeAll(async () => {
  gw = await startCli(["gateway", "--port", "0", "--data-dir", tempDir(), "--fake-delay-ms", "20"]);
  mintUrl = `${gw.url}/mint`;
  purse = await fundedPurse(mintUrl, 600);
  agent = await startAgent(gw.url, {
    models: [WHOLE, FRAGMENTS, INFLATE],
    job: (offer) => ({
      words: ["Let", " me", " check", "."],
      toolCalls: CALLS,
      ...(offer.model === FRAGMENTS ? { toolFragmentChars: 5 } : {}),
      // A dishonest node: two small calls, billed as if it wrote a novel.
      ...(offer.model === INFLATE ? { usage: () => ({ prompt_tokens: 10, completion_tokens: 900 }) } : {}),
    }),
  });
  for (let i = 0; i < 100; i++) {
    const tags = (await (await fetch(`${gw.url}/api/tags`)).json()) as { models: { name: string }[] };
    if (tags.models.length === 3) break;
    await new Promise((r) => setTimeout(r, 50));
  }
});
afterAll(async () => {
  await agent?.close();
  expect(await gw.stop()).toBe(0);
});

const expectedCalls = CALLS.map((c) => ({
  id: c.id,
  type: "function",
  function: { name: c.name, arguments: c.arguments },
}));

describe("tool calls through the gateway", () => {
  it("openai, not streamed: tools reach the node unchanged; whole calls come back byte-exact and billed as reported", async () => {
    const paid = 60;
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: await token(paid) });
    const { data, response } = await client.chat.completions
      .create({
        model: WHOLE,
        messages: [{ role: "user", content: "Weather and time in Zürich?" }],
        tools: TOOLS,
        tool_choice: "auto",
        parallel_tool_calls: true,
        max_tokens: 200,
      })
      .withResponse();
    const pulled = agent.bodies.at(-1)!;
    expect(pulled.tools).toEqual(TOOLS);
    expect(pulled.tool_choice).toBe("auto");
    expect(pulled.parallel_tool_calls).toBe(true);
    const choice = data.choices[0]!;
    expect(choice.finish_reason).toBe("tool_calls");
    expect(choice.message.content).toBe("Let me check.");
    expect(choice.message.tool_calls).toEqual(expectedCalls);
    // The node reported 4 words + what its tokenizer spent on the calls: believed, not disputed.
    expect(data.usage!.completion_tokens).toBe(4 + honestToolTokens(CALLS));
    expect(response.headers.get("x-owlrun-request-id")).toBeTruthy();
  });

  it("openai, streamed in fragments: delta.tool_calls relayed as sent; the tool answer goes back to the node", async () => {
    const client = new OpenAI({
      baseURL: `${gw.url}/v1`,
      apiKey: "unused",
      defaultHeaders: { "X-Cashu": await token(60) },
    });
    const stream = await client.chat.completions.create({
      model: FRAGMENTS,
      messages: [{ role: "user", content: "Weather?" }],
      tools: TOOLS,
      stream: true,
    });
    const calls: { id?: string; name: string; arguments: string }[] = [];
    let finish: string | null | undefined;
    let fragments = 0;
    for await (const chunk of stream) {
      for (const d of chunk.choices[0]?.delta?.tool_calls ?? []) {
        fragments++;
        const c = (calls[d.index] ??= { name: "", arguments: "" });
        if (d.id) c.id = d.id;
        c.name += d.function?.name ?? "";
        c.arguments += d.function?.arguments ?? "";
      }
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(calls).toEqual(CALLS);
    expect(fragments).toBeGreaterThan(CALLS.length * 2); // really fragmented
    expect(finish).toBe("tool_calls");

    // Second turn: the assistant's calls and the tool answers travel to the node unchanged.
    const turn: OpenAI.Chat.Completions.ChatCompletionMessageParam[] = [
      { role: "user", content: "Weather?" },
      { role: "assistant", content: null, tool_calls: expectedCalls as never },
      { role: "tool", tool_call_id: "call_w1", content: '{"temp_c":21}' },
      { role: "tool", tool_call_id: "call_w2", content: "12:00" },
    ];
    const next = new OpenAI({
      baseURL: `${gw.url}/v1`,
      apiKey: "unused",
      defaultHeaders: { "X-Cashu": await token(60) },
    });
    const again = await next.chat.completions.create({ model: WHOLE, messages: turn, tools: TOOLS });
    expect(again.choices[0]!.message.tool_calls).toEqual(expectedCalls);
    expect(agent.bodies.at(-1)!.messages).toEqual(turn);
  });

  it("raw SSE: each tool-call fragment is the node's own JSON", async () => {
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-cashu": await token(40) },
      body: JSON.stringify({
        model: WHOLE,
        messages: [{ role: "user", content: "x" }],
        tools: TOOLS,
        stream: true,
      }),
    });
    const events = (await res.text())
      .split("\n\n")
      .filter((e) => e.startsWith("data: {"))
      .map((e) => JSON.parse(e.slice(6)));
    const deltas = events.flatMap((e) => e.choices?.flatMap((c: any) => c.delta?.tool_calls ?? []) ?? []);
    expect(deltas).toEqual(CALLS.map((c, index) => ({ index, ...expectedCalls[index] })));
    const change = events.at(-1);
    expect(change.type).toBe("cashu_change");
    expect(await receive(change.token)).toBe(change.change_sats);
  });

  it("ollama /api/chat: tools in, message.tool_calls out (streamed and not); tool answers sent back by name", async () => {
    const ollama = new Ollama({ host: gw.url, headers: { "X-Cashu": await token(60) } });
    const answer = await ollama.chat({
      model: WHOLE,
      messages: [{ role: "user", content: "Weather?" }],
      tools: OLLAMA_TOOLS,
      stream: false,
    });
    const ollamaCalls = CALLS.map((c) => ({
      function: { name: c.name, arguments: JSON.parse(c.arguments) },
    }));
    expect(answer.message.tool_calls).toEqual(ollamaCalls);
    expect(answer.message.content).toBe("Let me check.");
    expect(agent.bodies.at(-1)!.tools).toEqual(TOOLS);
    const cost = (answer as unknown as { cost: { sats: number; change_sats: number } }).cost;
    expect(await receive((answer as unknown as { cashu_change: string }).cashu_change)).toBe(
      cost.change_sats,
    );

    const streamed = new Ollama({ host: gw.url, headers: { "X-Cashu": await token(60) } });
    const parts = await streamed.chat({
      model: FRAGMENTS,
      messages: [
        { role: "user", content: "Weather?" },
        { role: "assistant", content: "", tool_calls: ollamaCalls },
        { role: "tool", content: "12:00", tool_name: "get_time" },
        { role: "tool", content: '{"temp_c":21}', tool_name: "get_weather" },
      ],
      tools: OLLAMA_TOOLS,
      stream: true,
    });
    const got: unknown[] = [];
    for await (const p of parts) got.push(...(p.message.tool_calls ?? []));
    expect(got).toEqual(ollamaCalls);
    const sent = agent.bodies.at(-1)!.messages as Record<string, unknown>[];
    expect(sent[1]).toMatchObject({
      role: "assistant",
      tool_calls: [
        {
          id: "call_0",
          type: "function",
          function: { name: "get_weather", arguments: JSON.stringify(ollamaCalls[0]!.function.arguments) },
        },
        { id: "call_1", type: "function", function: { name: "get_time" } },
      ],
    });
    expect(sent[2]).toMatchObject({ role: "tool", tool_call_id: "call_1", content: "12:00" });
    expect(sent[3]).toMatchObject({ role: "tool", tool_call_id: "call_0" });
  });

  it("a node inflating its report behind tool calls gets only what it relayed (disputed, counted)", async () => {
    const client = new OpenAI({
      baseURL: `${gw.url}/v1`,
      apiKey: "unused",
      defaultHeaders: { "X-Cashu": await token(80) },
    });
    const r = await client.chat.completions.create({
      model: INFLATE,
      messages: [{ role: "user", content: "x" }],
      tools: TOOLS,
      max_tokens: 2000,
    });
    expect(r.choices[0]!.message.tool_calls).toEqual(expectedCalls);
    // 4 words + 2 calls relayed: the gateway's own count, not the 900 reported.
    expect(r.usage!.completion_tokens).toBe(6);
  });

  it("refuses a malformed tool definition with a 400 in OpenAI's shape, charging nothing", async () => {
    const paid = await token(10);
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-cashu": paid },
      body: JSON.stringify({
        model: WHOLE,
        messages: [{ role: "user", content: "x" }],
        tools: [{ type: "function", function: { description: "no name" } }],
      }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as any).error).toMatchObject({ type: "invalid_request" });
    expect(await receive(paid)).toBe(10);
  });
});
