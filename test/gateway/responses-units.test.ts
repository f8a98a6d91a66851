/**
 * The Responses API translation without a network: request items → chat messages (parallel calls
 * are one assistant turn, outputs are tool messages, hosted tools refused) and provider chunks →
 * output items and events (text before calls is its own item, interleaved parallel call fragments
 * land in their own items, every event numbered in order, every item closed).
 */
import { describe, expect, it } from "vitest";
import { ResponseBuilder, type ResponseEvent } from "../../gateway/api/responses/output.js";
import { type ResponsesRequest, ResponsesRequestSchema } from "../../gateway/api/responses/schemas.js";
import { toChatRequest } from "../../gateway/api/responses/translate.js";

const req = (r: Record<string, unknown>) =>
  ResponsesRequestSchema.parse({ model: "m", ...r }) as ResponsesRequest;

describe("Responses → chat request", () => {
  it("maps instructions, messages, parallel calls and their outputs", () => {
    const chat = toChatRequest(
      req({
        instructions: "Be brief.",
        input: [
          {
            role: "user",
            content: [
              { type: "input_text", text: "Weather in " },
              { type: "input_text", text: "Paris and Rome?" },
            ],
          },
          { type: "message", role: "assistant", content: [{ type: "output_text", text: "Checking." }] },
          { type: "function_call", call_id: "c1", name: "w", arguments: '{"city":"Paris"}' },
          { type: "function_call", call_id: "c2", name: "w", arguments: '{"city":"Rome"}' },
          { type: "reasoning", summary: [] },
          { type: "function_call_output", call_id: "c1", output: "sunny" },
          { type: "function_call_output", call_id: "c2", output: [{ type: "input_text", text: "rain" }] },
        ],
        tool_choice: { type: "function", name: "w" },
        max_output_tokens: 50,
        text: { format: { type: "json_schema", name: "x", schema: { type: "object" }, strict: true } },
      }),
    );
    expect(chat.messages).toEqual([
      { role: "system", content: "Be brief." },
      { role: "user", content: "Weather in Paris and Rome?" },
      {
        role: "assistant",
        content: "Checking.",
        tool_calls: [
          { id: "c1", type: "function", function: { name: "w", arguments: '{"city":"Paris"}' } },
          { id: "c2", type: "function", function: { name: "w", arguments: '{"city":"Rome"}' } },
        ],
      },
      { role: "tool", tool_call_id: "c1", content: "sunny" },
      { role: "tool", tool_call_id: "c2", content: "rain" },
    ]);
    expect(chat.tool_choice).toEqual({ type: "function", function: { name: "w" } });
    expect(chat.max_tokens).toBe(50);
    expect(chat.response_format).toEqual({
      type: "json_schema",
      json_schema: { name: "x", schema: { type: "object" }, strict: true },
    });
  });

  it("refuses hosted tools, stored conversations and unknown items", () => {
    expect(() => toChatRequest(req({ input: "hi", tools: [{ type: "file_search" }] }))).toThrow(
      /only function tools/,
    );
    expect(() => toChatRequest(req({ input: "hi", previous_response_id: "resp_1" }))).toThrow(/not stored/);
    expect(
      ResponsesRequestSchema.safeParse({ model: "m", input: [{ type: "item_reference", id: "x" }] }).success,
    ).toBe(false);
  });
});

describe("chunks → response items and events", () => {
  it("text, then interleaved parallel call fragments: three items, numbered events, all closed", () => {
    const events: ResponseEvent[] = [];
    const b = new ResponseBuilder(req({ input: "x" }), "m", (e) => events.push(e));
    b.start();
    const delta = (d: Record<string, unknown>, finish: string | null = null) => ({
      choices: [{ index: 0, delta: d, finish_reason: finish }],
    });
    b.add(delta({ role: "assistant", content: "Checking" }));
    b.add(delta({ tool_calls: [{ index: 0, id: "a", function: { name: "w", arguments: '{"ci' } }] }));
    b.add(delta({ tool_calls: [{ index: 1, id: "b", function: { name: "v", arguments: "{" } }] }));
    b.add(delta({ tool_calls: [{ index: 0, function: { arguments: 'ty":1}' } }] }));
    b.add(delta({ tool_calls: [{ index: 1, function: { arguments: "}" } }] }));
    b.add(delta({}, "tool_calls"));
    const final = b.finish({ status: "completed", usage: null });
    expect(final.output).toEqual([
      {
        type: "message",
        id: expect.stringMatching(/^msg_/),
        status: "completed",
        role: "assistant",
        content: [{ type: "output_text", text: "Checking", annotations: [] }],
      },
      {
        type: "function_call",
        id: expect.stringMatching(/^fc_/),
        call_id: "a",
        name: "w",
        arguments: '{"city":1}',
        status: "completed",
      },
      {
        type: "function_call",
        id: expect.stringMatching(/^fc_/),
        call_id: "b",
        name: "v",
        arguments: "{}",
        status: "completed",
      },
    ]);
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    const types = events.map((e) => `${e.type}${"output_index" in e ? `@${String(e.output_index)}` : ""}`);
    expect(types).toEqual([
      "response.created",
      "response.in_progress",
      "response.output_item.added@0",
      "response.content_part.added@0",
      "response.output_text.delta@0",
      "response.output_text.done@0",
      "response.content_part.done@0",
      "response.output_item.done@0",
      "response.output_item.added@1",
      "response.function_call_arguments.delta@1",
      "response.output_item.added@2",
      "response.function_call_arguments.delta@2",
      "response.function_call_arguments.delta@1",
      "response.function_call_arguments.delta@2",
      "response.function_call_arguments.done@1",
      "response.output_item.done@1",
      "response.function_call_arguments.done@2",
      "response.output_item.done@2",
      "response.completed",
    ]);
  });
});
