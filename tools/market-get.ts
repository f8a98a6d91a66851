/**
 * `market_get`: one task. With an account key it also shows your part: every quote if you are the
 * buyer, your quote if you quoted, and (include_delivery) the delivered file if you are a party.
 * Read-only.
 */
import type { McpServer } from "@modelcontextprotocol/server";
import * as z from "zod";
import { MarketDeliveryMetaSchema, MarketTaskSchema } from "../src/client/index.js";
import { TaskId, taskText } from "./market-support.js";
import { guarded, ok, type ToolDeps } from "./support.js";

/** Deliveries larger than this are described, not inlined (the agent reads them over HTTP). */
export const INLINE_DELIVERY_BYTES = 200_000;

export const MarketGetInput = z.object({
  task_id: TaskId,
  include_delivery: z
    .boolean()
    .optional()
    .describe("also return the delivered file (buyer and hired worker only): as text when it is UTF-8"),
});

export const MarketGetOutput = z.object({
  task: MarketTaskSchema,
  delivery: MarketDeliveryMetaSchema.extend({
    content_text: z.string().optional().describe("the file, when it is UTF-8 text"),
    content_base64: z.string().optional().describe("the file, when it is not text"),
  })
    .optional()
    .describe("present with include_delivery when there is a delivery you may read"),
});

export function registerMarketGetTool(server: McpServer, deps: ToolDeps): void {
  server.registerTool(
    "market_get",
    {
      title: "Get a marketplace task",
      description:
        "One marketplace task: state, budget, deadline, escrow. With the account key configured it also shows " +
        "your part (all quotes if you posted it, yours if you quoted) and, with include_delivery, the delivered file.",
      inputSchema: MarketGetInput,
      outputSchema: MarketGetOutput,
      annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: true },
    },
    async ({ task_id, include_delivery }) =>
      guarded(deps, "market_get", async () => {
        const task = await deps.gateway.marketTask(task_id);
        const lines = [taskText(task)];
        if (!include_delivery || !task.delivery) {
          if (include_delivery)
            lines.push(
              task.delivery === undefined
                ? "  (the delivery is shown to the buyer and the hired worker)"
                : "  nothing delivered yet",
            );
          return ok({ task }, lines.join("\n"));
        }
        const { content_base64, ...meta } = await deps.gateway.marketDelivery(task_id);
        const bytes = Buffer.from(content_base64, "base64");
        const text = new TextDecoder("utf-8", { fatal: false }).decode(bytes);
        const isText = !text.includes("\uFFFD") && !text.includes("\0");
        let delivery: z.infer<typeof MarketGetOutput>["delivery"] = meta;
        if (bytes.length > INLINE_DELIVERY_BYTES) {
          lines.push(
            `  the file is ${bytes.length} bytes: fetch it with GET ${deps.gateway.baseUrl}/v1/market/tasks/${task_id}/delivery`,
          );
        } else if (isText) {
          delivery = { ...meta, content_text: text };
          lines.push(`--- ${meta.filename} ---`, text);
        } else {
          delivery = { ...meta, content_base64 };
          lines.push(`  ${meta.filename} is binary (${bytes.length} bytes), returned as base64`);
        }
        return ok({ task, delivery }, lines.join("\n"));
      }),
  );
}
