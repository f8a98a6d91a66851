/** `market_deliver`: the hired worker uploads the result (text or base64), stored with its SHA-256. */
import type { McpServer } from "@modelcontextprotocol/server";
import * as z from "zod";
import { MarketTaskSchema } from "../src/client/index.js";
import { keyMissing, TaskId, taskText } from "./market-support.js";
import { fail, guarded, ok, type ToolDeps } from "./support.js";

export const MarketDeliverInput = z.object({
  task_id: TaskId,
  filename: z.string().min(1).max(255).describe("the file's name, e.g. summary.txt"),
  content: z.string().max(5_000_000).optional().describe("the file as text (UTF-8)"),
  content_base64: z.string().max(7_000_000).optional().describe("the file as base64 (for binary files)"),
  notes: z.string().max(5_000).optional().describe("a note for the buyer"),
});

export function registerMarketDeliverTool(server: McpServer, deps: ToolDeps): void {
  server.registerTool(
    "market_deliver",
    {
      title: "Deliver a marketplace task",
      description:
        "Uploads the result of a task you were hired for (give content as text, or content_base64). The buyer then " +
        "confirms, releasing the escrow to you; undisputed, it is released after the review window anyway.",
      inputSchema: MarketDeliverInput,
      outputSchema: MarketTaskSchema,
      annotations: {
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: false,
        openWorldHint: true,
      },
    },
    async ({ task_id, filename, content, content_base64, notes }) =>
      guarded(deps, "market_deliver", async () => {
        const missing = keyMissing(deps);
        if (missing) return missing;
        if ((content === undefined) === (content_base64 === undefined))
          return fail("give the file as content (text) or content_base64, one of the two");
        const task = await deps.gateway.marketDeliver(task_id, {
          filename,
          content_base64: content_base64 ?? Buffer.from(content!, "utf8").toString("base64"),
          notes,
        });
        return ok(task, `delivered:\n${taskText(task)}`);
      }),
  );
}
