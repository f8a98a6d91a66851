/**
 * The OpenAI Responses API through the gateway with the official `openai` client: text answers
 * (JSON and the `response.*` event stream, also through the SDK's `responses.stream()` helper), a function-call round trip relayed from a scripted node
 * that calls tools, payment by X-Cashu (change back) and by a raw cashu token as the API key, and
 * refusals in OpenAI's error shape that cost nothing.
 */
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobScript, OwlrunAgent } from "../support/owlrun-agent.js";
import { type PaidGateway, startPaidGateway } from "../support/paid-gateway.js";

const MODEL = "owlrun-test-scripted:tiny";
const WORDS = ["Hello", " from", " a", " scripted", " node", "."];
const TOOL_ARGS = '{"city":"Paris","unit":"celsius"}';
let gw: PaidGateway;
let agent: OwlrunAgent;
/** what the next job does (the node decides before it pulls the body) */
let next: JobScript[] = [];

const client = (headers: Record<string, string>, apiKey = "unused") =>
  new OpenAI({ baseURL: `${gw.url}/v1`, apiKey, defaultHeaders: headers, maxRetries: 0 });

const weatherTool = {
  type: "function" as const,
  name: "get_weather",
  description: "Weather in a city",
  parameters: {
    type: "object",
    properties: { city: { type: "string" }, unit: { type: "string" } },
    required: ["city"],
  },
  strict: false,
};

beforeAll(async () => {
  gw = await startPaidGateway(2000);
  agent = await gw.agent({ models: [MODEL], job: () => next.shift() ?? { words: WORDS } });
});
afterAll(async () => {
  await gw?.close();
});

describe("POST /v1/responses", () => {
  it("answers a text response paid with X-Cashu; usage, receipt and change add up", async () => {
    const token = await gw.token(50);
    const { data, response } = await client({ "X-Cashu": token })
      .responses.create({
        model: MODEL,
        instructions: "Answer briefly.",
        input: "Say hello",
        max_output_tokens: 30,
        temperature: 0.2,
      })
      .withResponse();
    expect(data.object).toBe("response");
    expect(data.status).toBe("completed");
    expect(data.output_text).toBe(WORDS.join(""));
    expect(data.output).toHaveLength(1);
    expect(data.output[0]).toMatchObject({ type: "message", role: "assistant", status: "completed" });
    expect(data.usage?.output_tokens).toBe(WORDS.length);
    expect(data.usage!.total_tokens).toBe(data.usage!.input_tokens + data.usage!.output_tokens);
    const cost = (data.usage as unknown as { cost: { sats: number; change_sats: number } }).cost;
    const change = await gw.receive(response.headers.get("x-cashu-change")!);
    expect(change).toBe(cost.change_sats);
    expect(change + cost.sats).toBe(50);
    // The node got a chat-completions job: instructions as the system message, the cap as max_tokens.
    const body = agent.bodies.at(-1)!;
    expect(body.messages).toEqual([
      { role: "system", content: "Answer briefly." },
      { role: "user", content: "Say hello" },
    ]);
    expect(body.max_tokens).toBe(30);
    expect(body.temperature).toBe(0.2);
  });

  it("streams the documented response.* events in order, numbered, then the change", async () => {
    const token = await gw.token(40);
    const stream = await client({ "X-Cashu": token }).responses.create({
      model: MODEL,
      input: [{ role: "user", content: [{ type: "input_text", text: "Say hello" }] }],
      stream: true,
    });
    const events: Record<string, any>[] = [];
    for await (const e of stream) events.push(e as unknown as Record<string, any>);
    const types = events.map((e) => e.type);
    expect(types).toEqual([
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
      ...WORDS.map(() => "response.output_text.delta"),
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.completed",
    ]);
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    const deltas = events.filter((e) => e.type === "response.output_text.delta");
    expect(deltas.map((e) => e.delta).join("")).toBe(WORDS.join(""));
    const itemId = events[2]!.item.id;
    expect(deltas.every((e) => e.item_id === itemId && e.output_index === 0 && e.content_index === 0)).toBe(
      true,
    );
    const done = events.find((e) => e.type === "response.completed")!.response;
    expect(done.status).toBe("completed");
    expect(done.output[0].content[0].text).toBe(WORDS.join(""));
    const change = done.cashu_change;
    expect(await gw.receive(change.token)).toBe(change.change_sats);
    expect(change.change_sats + done.usage.cost.sats).toBe(40);
    expect(done.payment).toMatchObject({ method: "xcashu", change_sats: change.change_sats });
  });

  it("relays a function call and takes its output back: a whole tool round trip", async () => {
    const openai = client({}, await gw.token(60)); // a raw cashu token as the API key (Routstr style)
    next = [{ words: [], toolCalls: [{ id: "call_w1", name: "get_weather", arguments: TOOL_ARGS }] }];
    const first = await openai.responses.create({
      model: MODEL,
      input: "What is the weather in Paris?",
      tools: [weatherTool],
      tool_choice: "auto",
    });
    expect(first.status).toBe("completed");
    const calls = first.output.filter((o) => o.type === "function_call");
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ name: "get_weather", arguments: TOOL_ARGS, call_id: "call_w1" });
    expect(agent.bodies.at(-1)!.tools).toEqual([
      {
        type: "function",
        function: {
          name: "get_weather",
          description: "Weather in a city",
          parameters: weatherTool.parameters,
          strict: false,
        },
      },
    ]);
    expect(agent.bodies.at(-1)!.tool_choice).toBe("auto");

    next = [{ words: ["It", " is", " sunny", "."] }];
    const second = await openai.responses.create({
      model: MODEL,
      input: [
        { role: "user", content: "What is the weather in Paris?" },
        ...(first.output as OpenAI.Responses.ResponseInputItem[]),
        { type: "function_call_output", call_id: "call_w1", output: '{"sky":"sunny"}' },
      ],
      tools: [weatherTool],
    });
    expect(second.output_text).toBe("It is sunny.");
    expect(agent.bodies.at(-1)!.messages).toEqual([
      { role: "user", content: "What is the weather in Paris?" },
      {
        role: "assistant",
        content: "",
        tool_calls: [
          { id: "call_w1", type: "function", function: { name: "get_weather", arguments: TOOL_ARGS } },
        ],
      },
      { role: "tool", tool_call_id: "call_w1", content: '{"sky":"sunny"}' },
    ]);
  });

  it("streams a function call as argument deltas that add up byte-exact", async () => {
    next = [
      {
        words: [],
        toolCalls: [{ id: "call_s1", name: "get_weather", arguments: TOOL_ARGS }],
        toolFragmentChars: 7,
      },
    ];
    const stream = client({ "X-Cashu": await gw.token(40) }).responses.stream({
      model: MODEL,
      input: "Weather?",
      tools: [weatherTool],
    });
    const events: Record<string, any>[] = [];
    for await (const e of stream) events.push(e as unknown as Record<string, any>);
    const final = await stream.finalResponse();
    const types = events.map((e) => e.type).filter((t) => t !== "response.function_call_arguments.delta");
    expect(types).toEqual([
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.function_call_arguments.done",
      "response.output_item.done",
      "response.completed",
    ]);
    const deltas = events.filter((e) => e.type === "response.function_call_arguments.delta");
    expect(deltas.length).toBe(Math.ceil(TOOL_ARGS.length / 7));
    expect(deltas.map((e) => e.delta).join("")).toBe(TOOL_ARGS);
    expect(events.find((e) => e.type === "response.function_call_arguments.done")).toMatchObject({
      name: "get_weather",
      arguments: TOOL_ARGS,
    });
    expect(final.output[0]).toMatchObject({
      type: "function_call",
      call_id: "call_s1",
      name: "get_weather",
      arguments: TOOL_ARGS,
      status: "completed",
    });
    const change = (final as unknown as { cashu_change: { token: string; change_sats: number } })
      .cashu_change;
    expect(await gw.receive(change.token)).toBe(change.change_sats);
  });

  it("marks a response cut at max_output_tokens incomplete", async () => {
    const r = await client({ "X-Cashu": await gw.token(30) }).responses.create({
      model: MODEL,
      input: "Say hello",
      max_output_tokens: 2,
    });
    expect(r.status).toBe("incomplete");
    expect(r.incomplete_details).toEqual({ reason: "max_output_tokens" });
    expect(r.output_text).toBe("Hello from");
  });

  it("refuses what it cannot serve in OpenAI's error shape, before taking any payment", async () => {
    const token = await gw.token(20);
    const openai = client({ "X-Cashu": token });
    for (const bad of [
      { tools: [{ type: "web_search" }] },
      { previous_response_id: "resp_123" },
      { input: [{ type: "item_reference", id: "msg_1" }] },
    ]) {
      const err = (await openai.responses
        .create({ model: MODEL, input: "hi", ...bad } as never)
        .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
      expect(err).toBeInstanceOf(OpenAI.BadRequestError);
      expect(err.error).toMatchObject({ type: "invalid_request" });
    }
    // The token was never claimed: it still pays.
    const ok = await openai.responses.create({ model: MODEL, input: "hi" });
    expect(ok.status).toBe("completed");
  });

  it("asks for payment without credentials (402) and answers 503 with the token back for an unknown model", async () => {
    const res = await fetch(`${gw.url}/v1/responses`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, input: "hi" }),
    });
    expect(res.status).toBe(402);
    const token = await gw.token(10);
    const missing = await fetch(`${gw.url}/v1/responses`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-cashu": token },
      body: JSON.stringify({ model: "no-such-model", input: "hi" }),
    });
    expect(missing.status).toBe(503);
    expect(((await missing.json()) as { error: { type: string } }).error.type).toBe("no_providers");
    expect(await gw.receive(missing.headers.get("x-cashu-change")!)).toBe(10);
  });
});
