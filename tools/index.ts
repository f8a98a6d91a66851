/**
 * The MCP tool surface (ARCHITECTURE.md §7): one file per tool, all registered here. The names
 * are part of the contract; test/mcp/tool-surface.test.ts snapshots every name, annotation and
 * schema. The market_* tools act for the gateway account whose key is configured.
 */
import { withPortableOutputs } from "./portable.js";
import type { McpServer } from "@modelcontextprotocol/server";
import { registerBalanceTool } from "./balance.js";
import { registerChatTool } from "./chat.js";
import { registerMarketAcceptTool } from "./market-accept.js";
import { registerMarketCollectTool } from "./market-collect.js";
import { registerMarketConfirmTool } from "./market-confirm.js";
import { registerMarketCreateTool } from "./market-create.js";
import { registerMarketDeliverTool } from "./market-deliver.js";
import { registerMarketGetTool } from "./market-get.js";
import { registerMarketListTool } from "./market-list.js";
import { registerMarketMeTool } from "./market-me.js";
import { registerMarketMessageTool } from "./market-message.js";
import { registerMarketQuoteTool } from "./market-quote.js";
import { registerModelsTool } from "./models.js";
import { registerReceiveTool } from "./receive.js";
import { registerSendTool } from "./send.js";
import type { ToolDeps } from "./support.js";
import { registerTopupStatusTool } from "./topup-status.js";
import { registerTopupTool } from "./topup.js";
import { registerWithdrawTool } from "./withdraw.js";

export type { ConfirmationState, SettleResult, ToolDeps } from "./support.js";
export { invoiceQrPng } from "./topup.js";
export { pickDefaultModel } from "./chat.js";
export { tidyInvalidUtf8 } from "./support.js";

export const TOOL_NAMES = [
  "chat",
  "models",
  "balance",
  "topup",
  "topup_status",
  "receive",
  "send",
  "withdraw",
  "market_list",
  "market_get",
  "market_create",
  "market_quote",
  "market_accept",
  "market_message",
  "market_deliver",
  "market_confirm",
  "market_collect",
  "market_me",
] as const;

export { noTypeArrays, portable } from "./portable.js";

export function registerTools(mcp: McpServer, deps: ToolDeps): void {
  // Output schemas as anyOf-with-null, never type arrays (portable to Gemini and OpenAPI subsets).
  const server = withPortableOutputs(mcp);
  registerChatTool(server, deps);
  registerModelsTool(server, deps);
  registerBalanceTool(server, deps);
  registerTopupTool(server, deps);
  registerTopupStatusTool(server, deps);
  registerReceiveTool(server, deps);
  registerSendTool(server, deps);
  registerWithdrawTool(server, deps);
  registerMarketListTool(server, deps);
  registerMarketGetTool(server, deps);
  registerMarketCreateTool(server, deps);
  registerMarketQuoteTool(server, deps);
  registerMarketAcceptTool(server, deps);
  registerMarketMessageTool(server, deps);
  registerMarketDeliverTool(server, deps);
  registerMarketConfirmTool(server, deps);
  registerMarketCollectTool(server, deps);
  registerMarketMeTool(server, deps);
}
