/** `market_message`: the thread of one quote, between the task's buyer and the quote's author: send and read. */
import type { McpServer } from "@modelcontextprotocol/server";
import * as z from "zod";
import { MarketMessageSchema } from "../src/client/index.js";
import { keyMissing, QuoteId, TaskId } from "./market-support.js";
import { guarded, ok, type ToolDeps } from "./support.js";

export const MarketMessageInput = z.object({
  task_id: TaskId,
  quote_id: QuoteId,
  body: z
    .string()
    .min(1)
    .max(10_000)
    .optional()
    .describe("a message to send; leave out to only read the thread"),
});

export const MarketMessageOutput = z.object({
  sent: z.boolean(),
  messages: z.array(MarketMessageSchema).describe("the whole thread, oldest first"),
});

export function registerMarketMessageTool(server: McpServer, deps: ToolDeps): void {
  server.registerTool(
    "market_message",
    {
      title: "Message on a quote",
      description:
        "Sends a message on a quote's thread (to negotiate or ask questions) and returns the thread. Only the task's " +
        "buyer and the quote's author can read and write it. Without body it only reads. Free.",
      inputSchema: MarketMessageInput,
      outputSchema: MarketMessageOutput,
      annotations: {
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: false,
        openWorldHint: true,
      },
    },
    async ({ task_id, quote_id, body }) =>
      guarded(deps, "market_message", async () => {
        const missing = keyMissing(deps);
        if (missing) return missing;
        if (body !== undefined) await deps.gateway.marketSendMessage(task_id, quote_id, body);
        const messages = await deps.gateway.marketMessages(task_id, quote_id);
        const text = messages.length
          ? messages.map((m) => `[${m.created_at}] ${m.from}: ${m.body}`).join("\n")
          : "no messages on this quote yet";
        return ok({ sent: body !== undefined, messages }, text);
      }),
  );
}
