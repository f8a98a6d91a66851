/**
 * The MCP tool surface (ARCHITECTURE.md §7): one file per tool, all registered here. The names
 * are part of the contract; test/mcp/tool-surface.test.ts snapshots every name, annotation and
 * schema. The market_* tools arrive with the marketplace.
 */
import type { McpServer } from "@modelcontextprotocol/server";
import { registerBalanceTool } from "./balance.js";
import { registerChatTool } from "./chat.js";
import { registerModelsTool } from "./models.js";
import { registerReceiveTool } from "./receive.js";
import { registerSendTool } from "./send.js";
import type { ToolDeps } from "./support.js";
import { registerTopupStatusTool } from "./topup-status.js";
import { registerTopupTool } from "./topup.js";
import { registerWithdrawTool } from "./withdraw.js";

export type { ConfirmationState, SettleResult, ToolDeps } from "./support.js";
export { invoiceQrPng } from "./topup.js";

export const TOOL_NAMES = [
  "chat",
  "models",
  "balance",
  "topup",
  "topup_status",
  "receive",
  "send",
  "withdraw",
] as const;

export function registerTools(server: McpServer, deps: ToolDeps): void {
  registerChatTool(server, deps);
  registerModelsTool(server, deps);
  registerBalanceTool(server, deps);
  registerTopupTool(server, deps);
  registerTopupStatusTool(server, deps);
  registerReceiveTool(server, deps);
  registerSendTool(server, deps);
  registerWithdrawTool(server, deps);
}
