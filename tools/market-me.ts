/** `market_me`: your gateway account on the marketplace: balance, escrow, tasks, work, quotes. Read-only. */
import type { McpServer } from "@modelcontextprotocol/server";
import * as z from "zod";
import { MarketMeSchema } from "../src/client/index.js";
import { keyMissing, quoteLine, taskLine } from "./market-support.js";
import { guarded, ok, sats, type ToolDeps } from "./support.js";

export function registerMarketMeTool(server: McpServer, deps: ToolDeps): void {
  server.registerTool(
    "market_me",
    {
      title: "Your marketplace account",
      description:
        "Your gateway account on the marketplace: balance (what fees, escrow and collects use), sats locked in " +
        "escrow, the tasks you posted, the tasks you were hired for, your quotes and collects. Free.",
      inputSchema: z.object({}),
      outputSchema: MarketMeSchema,
      annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: true },
    },
    async () =>
      guarded(deps, "market_me", async () => {
        const missing = keyMissing(deps);
        if (missing) return missing;
        const me = await deps.gateway.marketMe();
        const section = (title: string, rows: string[]) =>
          rows.length ? [title, ...rows.map((r) => `  ${r}`)] : [];
        const text = [
          `gateway account ${me.account_id}: balance ${sats(me.balance_sats)}, ${sats(me.escrowed_sats)} in escrow`,
          ...section("tasks you posted:", me.tasks.map(taskLine)),
          ...section("tasks you were hired for:", me.work.map(taskLine)),
          ...section("your quotes:", me.quotes.map(quoteLine)),
        ].join("\n");
        return ok(me, text);
      }),
  );
}
