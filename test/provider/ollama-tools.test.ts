/**
 * The provider's Ollama backend with tools: the definitions and the conversation's tool calls and
 * answers reach Ollama's /api/chat in Ollama's shape, and the calls Ollama returns come out as
 * OpenAI `delta.tool_calls` with `finish_reason: "tool_calls"`. Ollama is the edge here: a small
 * local server speaking its /api/tags and NDJSON /api/chat.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Backend, createOllamaBackend, refuseForcedTools } from "../../provider/index.js";
import { silentLogger } from "../../src/shared/index.js";

const MODEL = "qwen2.5:0.5b";
const TOOLS = [
  {
    type: "function",
    function: {
      name: "get_weather",
      parameters: { type: "object", properties: { city: { type: "string" } } },
    },
  },
];
let server: Server;
let backend: Backend;
const requests: Record<string, unknown>[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString()));
    req.on("end", () => {
      if (req.url === "/api/tags") {
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify({ models: [{ name: MODEL, model: MODEL }] }));
        return;
      }
      requests.push(JSON.parse(body) as Record<string, unknown>);
      res.setHeader("content-type", "application/x-ndjson");
      const line = (o: unknown) => res.write(`${JSON.stringify(o)}\n`);
      const call = { function: { name: "get_weather", arguments: { city: "Zürich", days: 2 } } };
      line({ model: MODEL, message: { role: "assistant", content: "", tool_calls: [call] }, done: false });
      line({
        model: MODEL,
        message: { role: "assistant", content: "" },
        done: true,
        done_reason: "stop",
        prompt_eval_count: 40,
        eval_count: 18,
      });
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  backend = await createOllamaBackend({
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    log: silentLogger,
  });
});
afterAll(async () => {
  await backend?.close();
  await new Promise((r) => server.close(r));
});

describe("Ollama backend tool calls", () => {
  it("passes tools and tool turns to /api/chat and relays Ollama's calls as OpenAI fragments", async () => {
    const chunks = [];
    for await (const c of backend.chat(
      {
        model: MODEL,
        tools: TOOLS,
        messages: [
          { role: "user", content: "Weather?" },
          {
            role: "assistant",
            content: null,
            tool_calls: [
              {
                id: "call_9",
                type: "function",
                function: { name: "get_weather", arguments: '{"city":"Bern"}' },
              },
            ],
          },
          { role: "tool", tool_call_id: "call_9", content: "18 °C" },
        ],
      },
      new AbortController().signal,
    ))
      chunks.push(c);
    const sent = requests.at(-1)!;
    expect(sent.tools).toEqual(TOOLS);
    expect(sent.messages).toEqual([
      { role: "user", content: "Weather?" },
      {
        role: "assistant",
        content: "",
        tool_calls: [{ function: { name: "get_weather", arguments: { city: "Bern" } } }],
      },
      { role: "tool", content: "18 °C", tool_name: "get_weather" },
    ]);
    const calls = chunks.flatMap((c) => c.choices.flatMap((x) => x.delta.tool_calls ?? []));
    expect(calls).toEqual([
      {
        index: 0,
        id: "call_0",
        type: "function",
        function: { name: "get_weather", arguments: '{"city":"Zürich","days":2}' },
      },
    ]);
    expect(chunks.flatMap((c) => c.choices.map((x) => x.finish_reason)).filter(Boolean)).toEqual([
      "tool_calls",
    ]);
    expect(chunks.at(-1)!.usage).toEqual({ prompt_tokens: 40, completion_tokens: 18, total_tokens: 58 });
  });
});

describe("embedded backend and tools", () => {
  it("answers text under tool_choice auto/none and refuses a forced call clearly", () => {
    const tools = TOOLS;
    expect(() => refuseForcedTools({ model: "m", tools })).not.toThrow();
    expect(() => refuseForcedTools({ model: "m", tools, tool_choice: "auto" })).not.toThrow();
    expect(() => refuseForcedTools({ model: "m", tools, tool_choice: "none" })).not.toThrow();
    expect(() => refuseForcedTools({ model: "m", tools, tool_choice: "required" })).toThrow(
      /embedded backend does not call tools/,
    );
    expect(() =>
      refuseForcedTools({
        model: "m",
        tools,
        tool_choice: { type: "function", function: { name: "get_weather" } },
      }),
    ).toThrow(/does not call tools/);
  });
});
