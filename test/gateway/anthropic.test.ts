/**
 * Anthropic's Messages API on the gateway with the official `@anthropic-ai/sdk`: `messages.create`
 * and `messages.stream` with a tool round trip, paid by X-Cashu (change in X-Cashu-Change) and by a
 * raw cashu token as the API key (the rest withdrawable with the same token); Anthropic's event
 * sequence and error shape; model aliases; a Claude-Code-sized request. Gateway as a child process,
 * a scripted Owlrun node that answers text and calls tools.
 */
import Anthropic from "@anthropic-ai/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";
import { fundedPurse, type Purse } from "../support/purse.js";
import { type Agent, startAgent } from "../support/owlrun-agent.js";
import { postJson } from "../support/payments.js";

const TOOLS_MODEL = "owlrun-test-scripted:tiny";
const TEXT_MODEL = "owlrun-test-text:tiny";
const CALL = { id: "toolu_01abc", name: "get_weather", arguments: '{"city":"Zürich","units":"celsius"}' };
const TOOLS: Anthropic.Tool[] = [
  {
    name: "get_weather",
    description: "Weather in a city",
    input_schema: { type: "object", properties: { city: { type: "string" }, units: { type: "string" } } },
  },
];

let gw: CliProcess;
let mintUrl: string;
let purse: Purse;
let agent: Agent;

const token = (amount: number) => purse.token(amount);
const receive = (t: string) => purse.receive(t);

beforeAll(async () => {
  gw = await startCli([
    "gateway",
    "--port",
    "0",
    "--data-dir",
    tempDir(),
    "--fake-delay-ms",
    "20",
    "--model-alias",
    "claude-haiku-4-5=owlrun-test-text:tiny",
    "--model-alias",
    "claude-opus-*=owlrun-test-scripted:tiny",
  ]);
  mintUrl = `${gw.url}/mint`;
  purse = await fundedPurse(mintUrl, 1500);
  agent = await startAgent(gw.url, {
    models: [TOOLS_MODEL, TEXT_MODEL],
    job: (offer) =>
      offer.model === TOOLS_MODEL
        ? { words: ["Checking", "."], toolCalls: [CALL], toolFragmentChars: 7 }
        : { words: ["Hi", " there", "!"] },
  });
  for (let i = 0; i < 100; i++) {
    const tags = (await (await fetch(`${gw.url}/api/tags`)).json()) as { models: unknown[] };
    if (tags.models.length === 2) break;
    await new Promise((r) => setTimeout(r, 50));
  }
});
afterAll(async () => {
  await agent?.close();
  expect(await gw.stop()).toBe(0);
});

const ask: Anthropic.MessageParam[] = [{ role: "user", content: "Weather in Zürich?" }];

describe("Anthropic Messages API", () => {
  it("messages.create with X-Cashu: tool_use round trip, stop reasons, change in X-Cashu-Change", async () => {
    const paid = 80;
    const client = new Anthropic({
      baseURL: gw.url,
      apiKey: "unused",
      defaultHeaders: { "X-Cashu": await token(paid) },
      maxRetries: 0,
    });
    const { data: msg, response } = await client.messages
      .create({
        model: TOOLS_MODEL,
        max_tokens: 300,
        system: [{ type: "text", text: "You are terse." }],
        messages: ask,
        tools: TOOLS,
        tool_choice: { type: "auto", disable_parallel_tool_use: true },
      })
      .withResponse();
    expect(msg).toMatchObject({
      type: "message",
      role: "assistant",
      model: TOOLS_MODEL,
      stop_reason: "tool_use",
    });
    expect(msg.content).toEqual([
      { type: "text", text: "Checking." },
      { type: "tool_use", id: CALL.id, name: CALL.name, input: JSON.parse(CALL.arguments) },
    ]);
    expect(msg.usage.output_tokens).toBeGreaterThan(2);
    const pulled = agent.bodies.at(-1)!;
    expect(pulled.messages).toEqual([
      { role: "system", content: "You are terse." },
      { role: "user", content: "Weather in Zürich?" },
    ]);
    expect(pulled.tools).toEqual([
      {
        type: "function",
        function: {
          name: "get_weather",
          description: "Weather in a city",
          parameters: TOOLS[0]!.input_schema,
        },
      },
    ]);
    expect(pulled.tool_choice).toBe("auto");
    expect(pulled.parallel_tool_calls).toBe(false);
    const change = response.headers.get("x-cashu-change")!;
    const cost = Number(response.headers.get("x-cost-sats"));
    expect(cost).toBeGreaterThan(0);
    expect(await receive(change)).toBe(paid - cost);

    // The tool's answer goes back; the node sees OpenAI's assistant tool_calls and tool message.
    const next = new Anthropic({
      baseURL: gw.url,
      apiKey: "unused",
      defaultHeaders: { "X-Cashu": await token(40) },
      maxRetries: 0,
    });
    const done = await next.messages.create({
      model: TEXT_MODEL,
      max_tokens: 50,
      messages: [
        ...ask,
        { role: "assistant", content: msg.content },
        {
          role: "user",
          content: [
            { type: "tool_result", tool_use_id: CALL.id, content: [{ type: "text", text: "21 °C" }] },
            { type: "text", text: "Thanks" },
          ],
        },
      ],
      tools: TOOLS,
      stop_sequences: ["\n\nHuman:"],
      ...({ temperature: 0.2 } as object), // gone from this SDK's types, still in the API
    });
    expect(done.content).toEqual([{ type: "text", text: "Hi there!" }]);
    expect(done.stop_reason).toBe("end_turn");
    const second = agent.bodies.at(-1)!;
    expect(second.messages).toEqual([
      { role: "user", content: "Weather in Zürich?" },
      {
        role: "assistant",
        content: "Checking.",
        tool_calls: [
          {
            id: CALL.id,
            type: "function",
            function: { name: CALL.name, arguments: JSON.stringify(JSON.parse(CALL.arguments)) },
          },
        ],
      },
      { role: "tool", tool_call_id: CALL.id, content: "21 °C" },
      { role: "user", content: "Thanks" },
    ]);
    expect(second).toMatchObject({ stop: ["\n\nHuman:"], temperature: 0.2 });
  });

  it("messages.stream paid by a raw cashu token as the API key: input_json_delta relayed, the rest withdrawable", async () => {
    const cashu = await token(100);
    const client = new Anthropic({ baseURL: gw.url, apiKey: cashu, maxRetries: 0 });
    const stream = client.messages.stream({
      model: TOOLS_MODEL,
      max_tokens: 300,
      messages: ask,
      tools: TOOLS,
    });
    const partial: string[] = [];
    stream.on("inputJson", (delta) => partial.push(delta));
    const msg = await stream.finalMessage();
    expect(partial.join("")).toBe(CALL.arguments); // byte for byte as the node sent it
    expect(partial.length).toBeGreaterThan(1);
    expect(msg.content).toEqual([
      { type: "text", text: "Checking." },
      { type: "tool_use", id: CALL.id, name: CALL.name, input: JSON.parse(CALL.arguments) },
    ]);
    expect(msg.stop_reason).toBe("tool_use");
    expect(msg.usage.input_tokens).toBeGreaterThan(0);
    // What the session did not spend comes back to the same token as the key.
    const w = await postJson(`${gw.url}/v1/balance/withdraw`, {}, { authorization: `Bearer ${cashu}` });
    expect(w.status).toBe(200);
    const out = (await w.json()) as { token: string; amount_sats: number };
    expect(out.amount_sats).toBeGreaterThan(0);
    expect(out.amount_sats).toBeLessThan(100);
    expect(await receive(out.token)).toBe(out.amount_sats);
  });

  it("the raw event stream follows Anthropic's order, then the receipt and the X-Cashu change", async () => {
    const res = await postJson(
      `${gw.url}/v1/messages?beta=true`,
      { model: TOOLS_MODEL, max_tokens: 200, messages: ask, tools: TOOLS, stream: true },
      {
        "x-cashu": await token(60),
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "fine-grained-tool-streaming-2025-05-14",
      },
    );
    expect(res.status).toBe(200);
    const events = (await res.text())
      .split("\n\n")
      .filter(Boolean)
      .map((e) => {
        const [head, data] = e.split("\n");
        return { event: head!.slice(7), data: JSON.parse(data!.slice(6)) };
      });
    for (const e of events) expect(e.data.type).toBe(e.event);
    const kinds = events.map((e) =>
      e.event === "content_block_delta" ? `delta:${e.data.delta.type}` : e.event,
    );
    const collapsed = kinds.filter((k, i) => k !== kinds[i - 1]);
    expect(collapsed).toEqual([
      "message_start",
      "ping",
      "content_block_start",
      "delta:text_delta",
      "content_block_stop",
      "content_block_start",
      "delta:input_json_delta",
      "content_block_stop",
      "message_delta",
      "message_stop",
      "owlrun_payment",
      "cashu_change",
    ]);
    const starts = events.filter((e) => e.event === "content_block_start").map((e) => e.data);
    expect(starts).toEqual([
      { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } },
      {
        type: "content_block_start",
        index: 1,
        content_block: { type: "tool_use", id: CALL.id, name: CALL.name, input: {} },
      },
    ]);
    const delta = events.find((e) => e.event === "message_delta")!.data;
    expect(delta.delta).toEqual({ stop_reason: "tool_use", stop_sequence: null });
    const change = events.at(-1)!.data;
    const payment = events.at(-2)!.data.payment;
    expect(change.change_sats).toBe(60 - payment.amount_sats);
    expect(await receive(change.token)).toBe(change.change_sats);
  });

  it("errors in Anthropic's shape: image blocks, malformed JSON, no payment, no such model; the token untouched", async () => {
    const paid = await token(20);
    const image = await postJson(
      `${gw.url}/v1/messages`,
      {
        model: TEXT_MODEL,
        max_tokens: 10,
        messages: [
          {
            role: "user",
            content: [{ type: "image", source: { type: "base64", media_type: "image/png", data: "AA==" } }],
          },
        ],
      },
      { "x-cashu": paid },
    );
    expect(image.status).toBe(400);
    expect(await image.json()).toMatchObject({
      type: "error",
      error: {
        type: "invalid_request_error",
        message: expect.stringMatching(/image content blocks are not supported/),
      },
    });
    const bad = await fetch(`${gw.url}/v1/messages`, {
      method: "POST",
      body: "{not json",
      headers: { "x-cashu": paid },
    });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ type: "error", error: { type: "invalid_request_error" } });
    const client = new Anthropic({ baseURL: gw.url, apiKey: "rc_nonexistent", maxRetries: 0 });
    await expect(
      client.messages.create({ model: TEXT_MODEL, max_tokens: 5, messages: ask }),
    ).rejects.toMatchObject({
      status: 401,
      error: { type: "error", error: { type: "authentication_error" } },
    });
    const unpaid = await postJson(`${gw.url}/v1/messages`, {
      model: TEXT_MODEL,
      max_tokens: 5,
      messages: ask,
    });
    expect(unpaid.status).toBe(402);
    expect(await unpaid.json()).toMatchObject({ type: "error", error: { type: "billing_error" } });
    const missing = await postJson(
      `${gw.url}/v1/messages`,
      { model: "no-such-model", max_tokens: 5, messages: ask },
      { "x-cashu": paid },
    );
    expect(missing.status).toBe(503);
    expect(await missing.json()).toMatchObject({ type: "error", error: { type: "overloaded_error" } });
    expect(await receive(paid)).toBe(20);
  });

  it("count_tokens answers the estimate, free", async () => {
    const client = new Anthropic({ baseURL: gw.url, apiKey: "unused", maxRetries: 0 });
    const small = await client.messages.countTokens({ model: TEXT_MODEL, messages: ask });
    const big = await client.messages.countTokens({
      model: TEXT_MODEL,
      messages: ask,
      tools: TOOLS,
      system: "x".repeat(3000),
    });
    expect(small.input_tokens).toBeGreaterThan(0);
    // 3,000 bytes of system prompt at ~4 bytes a token, plus the tool definitions
    expect(big.input_tokens).toBeGreaterThan(small.input_tokens + 700);
  });

  it("model aliases: mapped names, prefix patterns and the claude-… default; listed in /v1/models", async () => {
    const models = (await (await fetch(`${gw.url}/v1/models`)).json()) as {
      data: { id: string; alias_of?: string }[];
    };
    expect(models.data.find((m) => m.id === "claude-haiku-4-5")).toMatchObject({ alias_of: TEXT_MODEL });
    const serve = async (model: string) => {
      const client = new Anthropic({
        baseURL: gw.url,
        apiKey: "unused",
        defaultHeaders: { "X-Cashu": await token(40) },
        maxRetries: 0,
      });
      const msg = await client.messages.create({ model, max_tokens: 50, messages: ask, tools: TOOLS });
      return { msg, served: agent.offers.at(-1)!.model };
    };
    expect(await serve("claude-haiku-4-5")).toMatchObject({
      served: TEXT_MODEL,
      msg: { model: "claude-haiku-4-5" },
    });
    expect((await serve("claude-opus-4-1")).served).toBe(TOOLS_MODEL);
    // Nothing maps claude-sonnet-…: the model most nodes serve (a tie here: the first by name).
    expect((await serve("claude-sonnet-4-5-20250929")).served).toBe(TOOLS_MODEL);
  });

  it("a Claude-Code-sized request (~48 KB, a dozen tools, max_tokens 32000) is held, served and its change returned", async () => {
    const tools: Anthropic.Tool[] = Array.from({ length: 12 }, (_, i) => ({
      name: `Tool${i}`,
      description: `A tool that does thing ${i}. `.repeat(90),
      input_schema: {
        type: "object",
        properties: Object.fromEntries(
          Array.from({ length: 8 }, (_, j) => [
            `arg${j}`,
            { type: "string", description: `argument ${j} of tool ${i}` },
          ]),
        ),
        required: ["arg0"],
        additionalProperties: false,
        $schema: "http://json-schema.org/draft-07/schema#",
      },
    }));
    const system = [
      {
        type: "text" as const,
        text: "You are Claude Code. ".repeat(500),
        cache_control: { type: "ephemeral" as const },
      },
    ];
    const body = {
      model: "claude-sonnet-4-5",
      max_tokens: 32000,
      system,
      tools,
      messages: ask,
      stream: true,
      metadata: { user_id: "u" },
    };
    expect(JSON.stringify(body).length).toBeGreaterThan(45_000);
    const paid = 400;
    const client = new Anthropic({
      baseURL: gw.url,
      apiKey: "unused",
      defaultHeaders: { "X-Cashu": await token(paid) },
      maxRetries: 0,
    });
    // The raw event stream (as Claude Code reads it): our extra events arrive after message_stop.
    const stream = await client.messages.create(body);
    let change: { token: string; change_sats: number } | undefined;
    const seen: string[] = [];
    for await (const e of stream as AsyncIterable<{ type: string }>) {
      seen.push(e.type);
      if (e.type === "cashu_change") change = e as unknown as typeof change;
    }
    expect(seen).toContain("message_stop");
    expect(seen).toContain("content_block_delta");
    expect(change!.change_sats).toBeGreaterThan(0);
    expect(await receive(change!.token)).toBe(change!.change_sats);
    // The node got the whole thing: every tool and the system prompt.
    const pulled = agent.bodies.at(-1)!;
    expect((pulled.tools as unknown[]).length).toBe(12);
    expect(pulled.max_tokens).toBeGreaterThan(0);
  });
});
