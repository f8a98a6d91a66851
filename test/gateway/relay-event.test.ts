/**
 * The relay's spliced stream event (a head built once per response, then choices and text per
 * chunk) is byte for byte what serialising the whole event object gives, for any relayed choices.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { relayedEvent, relayedEventHead } from "../../gateway/api/chat.js";
import type { StreamChunk } from "../../gateway/routing/index.js";

describe("relayed stream event", () => {
  it("equals JSON.stringify of {id, object, created, model, choices, message, done}", () => {
    const text = fc.oneof(fc.string({ maxLength: 10 }), fc.string({ unit: "grapheme", maxLength: 4 }));
    const choice = fc.record(
      {
        index: fc.nat(3),
        delta: fc.record(
          {
            role: fc.constant("assistant"),
            content: fc.oneof(text, fc.constant(null)),
            tool_calls: fc.array(fc.record({ index: fc.nat(2), id: text }), { maxLength: 1 }),
          },
          { requiredKeys: [] },
        ),
        text,
        finish_reason: fc.oneof(fc.constant(null), fc.constant("stop")),
        logprobs: fc.constant(null),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(
        text,
        fc.constantFrom("chat.completion.chunk", "text_completion"),
        fc.nat(),
        text,
        fc.array(choice, { maxLength: 3 }),
        (id, object, created, model, choices) => {
          const cs = choices as NonNullable<StreamChunk["choices"]>;
          const content = cs.map((c) => c.delta?.content ?? c.text ?? "").join("");
          const whole = `data: ${JSON.stringify({
            id,
            object,
            created,
            model,
            choices: cs,
            message: { role: "assistant", content },
            done: false,
          })}\n\n`;
          expect(relayedEvent(relayedEventHead(id, object, created, model), cs)).toBe(whole);
        },
      ),
      { numRuns: 1000 },
    );
  });
});
