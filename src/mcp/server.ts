/**
 * The MCP server: one McpServer (SDK v2) per connection or request, built from the shared
 * dependencies. The same factory serves the 2026-07-28 protocol and 2025-era clients.
 */
import { McpServer, type ServerContext } from "@modelcontextprotocol/server";
import type { LogRelay } from "./log-relay.js";
import { registerTools, type ToolDeps } from "../../tools/index.js";
import { wellKnownJson } from "../shared/discovery/index.js";
import { VERSION } from "../shared/index.js";

// Name, title and description live once, in the static server card (.well-known/mcp/server-card.json).
const card = wellKnownJson("mcp/server-card.json", "") as {
  name: string;
  title: string;
  description: string;
};
export const SERVER_NAME = card.name;
export const SERVER_TITLE = card.title;
export const SERVER_DESCRIPTION = card.description;

export function instructions(deps: Pick<ToolDeps, "wallet" | "gatewaySetup">): string {
  const { perCallSat, perDaySat } = deps.wallet.limits;
  return [
    "owlrun-mcp gives you LLM inference paid with Bitcoin ecash from a local Cashu wallet.",
    "- `models` lists the models online and their prices in sats (free); `balance` shows the wallet (free).",
    "- `chat` sends one prompt and pays for it with a few sats; unused sats come back as change, and the result says what it cost.",
    "- When the wallet is empty: `topup` gives a Lightning invoice (text and QR image) for the user to pay, then `topup_status` with wait: true claims the ecash. `receive` takes a cashu token someone gave you.",
    "- `send` (a cashu token) and `withdraw` (a Lightning invoice or address) move money out of the wallet: use them only when the user asked for it.",
    "- The AI-for-hire marketplace (`market_*`) acts for the user's gateway account (its key, OWLRUN_GATEWAY_API_KEY): `market_list`/`market_get` to browse, `market_create` to post a task, `market_quote` to offer work, `market_accept` to hire (locks the price in escrow), `market_message` to talk, `market_deliver` the result, `market_confirm` to release the escrow (or dispute/cancel), `market_collect` to take earnings out over Lightning, `market_me` for the account.",
    `Spending limits: up to ${perCallSat} sats per call without confirmation (above that the user is asked to confirm, or the call is refused), at most ${perDaySat} sats a day.`,
    ...(deps.gatewaySetup ? [deps.gatewaySetup] : []),
  ].join("\n");
}

export function buildServer(deps: ToolDeps, logs?: LogRelay): McpServer {
  const server = new McpServer(
    { name: SERVER_NAME, title: SERVER_TITLE, version: VERSION, description: SERVER_DESCRIPTION },
    {
      instructions: instructions(deps),
      // The tool list is fixed for the life of the server (as the server card says).
      capabilities: logs ? { tools: { listChanged: false }, logging: {} } : { tools: { listChanged: false } },
      // Spend confirmations carry signed, expiring state between rounds (tools/confirm.ts).
      requestState: { verify: deps.confirmations.codec.verify },
    },
  );
  if (logs) {
    logs.attach(server);
    // Every tool call runs inside the relay, so what it logs reaches the client that made the call.
    const register = server.registerTool.bind(server) as (...a: unknown[]) => unknown;
    server.registerTool = ((
      name: string,
      config: unknown,
      cb: (args: unknown, ctx: ServerContext) => unknown,
    ) =>
      register(name, config, (args: unknown, ctx: ServerContext) =>
        logs.within(ctx, () => cb(args, ctx)),
      )) as unknown as McpServer["registerTool"];
  }
  registerTools(server, deps);
  return server;
}
