/**
 * Spend limits for tools that pay: the daily limit is never exceeded (wallet.checkSpend); a spend
 * above the per-call limit needs the user's confirmation through elicitation.
 *
 * One code path serves both protocol eras: the handler returns `inputRequired(...)` (the
 * 2026-07-28 multi-round-trip form). A 2026 client answers it and retries the call with the
 * response; on a 2025-era connection the SDK's legacy shim turns it into the older push
 * `elicitation/create` request and re-enters the handler with the answer. Clients that declared no
 * form elicitation get a clear refusal instead.
 *
 * The retry carries a signed, single-use `requestState` naming the tool, the amount and a digest of
 * the arguments, so a confirmation cannot be replayed or moved to another spend.
 */
import { createHash, randomUUID } from "node:crypto";
import {
  CLIENT_CAPABILITIES_META_KEY,
  type ClientCapabilities,
  inputRequired,
  inputResponse,
  type McpServer,
  type ServerContext,
} from "@modelcontextprotocol/server";
import * as z from "zod";
import { type ConfirmationState, fail, sats, type ToolDeps, type ToolResult } from "./support.js";

export const CONFIRM_KEY = "confirm_spend";

export const ConfirmSchema = z.object({
  confirm: z.boolean().describe("Yes, spend these sats"),
});

export interface Spend {
  tool: string;
  amountSat: number;
  /** what is paid for, e.g. "send a 2000-sat cashu token" */
  what: string;
  /** the tool arguments the confirmation is bound to */
  args: unknown;
}

const digest = (args: unknown) =>
  createHash("sha256")
    .update(JSON.stringify(args ?? null))
    .digest("base64url")
    .slice(0, 22);

/** Whether this request's client can answer a form elicitation. */
function canElicit(server: McpServer, ctx: ServerContext): boolean {
  const envelope = ctx.mcpReq.envelope as Record<string, unknown> | undefined;
  const caps =
    (envelope?.[CLIENT_CAPABILITIES_META_KEY] as ClientCapabilities | undefined) ??
    server.server.getClientCapabilities();
  const e = caps?.elicitation as { form?: unknown; url?: unknown } | undefined;
  return !!e && (e.form !== undefined || e.url === undefined);
}

/**
 * Null when the spend may go ahead; otherwise the result to return (a refusal, or the request for
 * the user's confirmation).
 */
export async function approveSpend(
  server: McpServer,
  deps: ToolDeps,
  ctx: ServerContext,
  spend: Spend,
): Promise<ToolResult | null> {
  const { overPerCall } = deps.wallet.checkSpend(spend.amountSat); // throws past the daily limit
  if (!overPerCall) return null;
  const limit = deps.wallet.limits.perCallSat;
  if (!canElicit(server, ctx)) {
    return fail(
      `refused: ${spend.what} costs ${sats(spend.amountSat)}, above the per-call limit of ${sats(limit)}, ` +
        "and this MCP client cannot ask the user to confirm (it does not support elicitation). " +
        "The user can raise the limit (--max-per-call or OWLRUN_MAX_PER_CALL) or use `npx owlrun-mcp wallet`.",
    );
  }
  const h = digest({ tool: spend.tool, args: spend.args });
  const answer = inputResponse(ctx.mcpReq.inputResponses, CONFIRM_KEY);
  if (answer.kind === "elicit") {
    if (answer.action !== "accept" || ConfirmSchema.safeParse(answer.content).data?.confirm !== true) {
      return fail(`not paid: the user declined to ${spend.what} (${sats(spend.amountSat)}).`);
    }
    const state = ctx.mcpReq.requestState<ConfirmationState>();
    const bound =
      state &&
      typeof state === "object" &&
      state.t === spend.tool &&
      state.a === spend.amountSat &&
      state.h === h &&
      !deps.confirmations.used.has(state.n);
    if (bound) {
      deps.confirmations.used.add(state.n);
      if (deps.confirmations.used.size > 10_000) deps.confirmations.used.clear(); // states expire anyway
      deps.log.info("spend confirmed by the user", { tool: spend.tool, sats: spend.amountSat });
      return null;
    }
    // An acceptance that does not match this spend (replayed or for other arguments): ask again.
  }
  const spent = deps.wallet.spentToday();
  const message =
    `Confirm payment: ${spend.what} for ${sats(spend.amountSat)}? ` +
    `This is above your per-call limit of ${sats(limit)} ` +
    `(spent today: ${spent} of ${sats(deps.wallet.limits.perDaySat)}).`;
  const payload: ConfirmationState = { n: randomUUID(), t: spend.tool, a: spend.amountSat, h };
  return inputRequired({
    inputRequests: { [CONFIRM_KEY]: inputRequired.elicit({ message, requestedSchema: ConfirmSchema }) },
    requestState: await deps.confirmations.codec.mint(payload),
  });
}
