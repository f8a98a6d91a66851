/**
 * `chat`: one LLM request paid with ecash. The wallet makes a token a little above the estimated
 * price (model rates from /v1/models and the prompt size), the request id is journaled before the
 * token leaves, the gateway returns the unused part as change, and the change goes back into the
 * wallet. If the answer never arrives the token is reclaimed, or its change fetched by request id.
 */
import type { McpServer } from "@modelcontextprotocol/server";
import * as z from "zod";
import {
  type ChatMessage,
  GatewayApiError,
  type GatewayModel,
  GatewayUnavailableError,
} from "../src/client/index.js";
import { EcashError, normalizeMintUrl } from "../src/shared/ecash/index.js";
import { promptTokenBound } from "../src/shared/index.js";
import { chatWithL402 } from "./chat-l402.js";
import { approveSpend } from "./confirm.js";
import {
  errorText,
  fail,
  guarded,
  ok,
  sats,
  type SettleResult,
  type ToolDeps,
  completionView,
} from "./support.js";

/** Every paid request costs at least this (ARCHITECTURE.md §4). */
export const MIN_CHARGE_SAT = 2;
export const DEFAULT_MAX_TOKENS = 512;

export const ChatInput = z.object({
  prompt: z.string().min(1).max(200_000).describe("the user message to send to the model"),
  system: z.string().max(50_000).optional().describe("optional system prompt"),
  model: z
    .string()
    .min(1)
    .max(200)
    .optional()
    .describe("model id from the models tool (default: the gateway's default model)"),
  max_tokens: z
    .number()
    .int()
    .min(1)
    .max(32_768)
    .optional()
    .describe(`longest answer to pay for, in tokens (default ${DEFAULT_MAX_TOKENS})`),
  temperature: z.number().min(0).max(2).optional(),
});

export const ChatOutput = z.object({
  answer: z.string(),
  model: z.string(),
  finish_reason: z.string().nullable(),
  prompt_tokens: z.number().int().nonnegative().nullable(),
  completion_tokens: z.number().int().nonnegative().nullable(),
  cost_sats: z.number().int().nonnegative().describe("what the request cost"),
  paid_sats: z.number().int().nonnegative().describe("the token sent with the request"),
  change_sats: z.number().int().nonnegative().describe("sats that came back as change"),
  balance_sats: z.number().int().nonnegative(),
  request_id: z.string(),
});

/** The gateway's own prompt bound (UTF-8 bytes / 2 plus the chat template), as it quotes and holds. */
export const estimatePromptTokens = (messages: ChatMessage[]) => promptTokenBound(messages);

/**
 * The model to use when the agent names none: the gateway's default while online, else the one most
 * nodes serve, then the dearest; never just the first by name (on a devnet that is the random one).
 */
export function pickDefaultModel(
  models: GatewayModel[],
  gatewayDefault: string | null,
): GatewayModel | undefined {
  const chosen = gatewayDefault ? models.find((m) => m.id === gatewayDefault) : undefined;
  if (chosen) return chosen;
  const price = (m: GatewayModel) => m.pricing?.per_m_output_usd ?? 0;
  return [...models].sort(
    (a, b) => (b.providers ?? 0) - (a.providers ?? 0) || price(b) - price(a) || a.id.localeCompare(b.id),
  )[0];
}

/** Sats for the prompt and a full-length answer at the model's rates, with the 2-sat floor. */
export function estimateSats(model: GatewayModel, promptTokens: number, maxTokens: number): number {
  const input = model.routecat_pricing?.input_per_1m_tokens_sats ?? 0;
  const output = model.routecat_pricing?.output_per_1m_tokens_sats ?? 0;
  return Math.max(MIN_CHARGE_SAT, Math.ceil((promptTokens * input + maxTokens * output) / 1_000_000));
}

/** What to send: the estimate plus 10% (at least 1 sat) for rate moves; the rest comes back. */
export const withMargin = (estimate: number) => estimate + Math.max(1, Math.ceil(estimate * 0.1));

function describeSettle(s: SettleResult): string {
  if (s.state === "reclaimed") return `the unused token (${sats(s.sats)}) is back in the wallet`;
  if (s.state === "changed") return `${sats(s.sats)} of change came back`;
  if (s.state === "closed") return "nothing was due back";
  return "its change will be collected automatically once the gateway or mint answers";
}

export function registerChatTool(server: McpServer, deps: ToolDeps): void {
  server.registerTool(
    "chat",
    {
      title: "Chat with an LLM (paid in ecash)",
      description:
        "Sends one prompt to an LLM through the Owlrun gateway and pays for it from the wallet with ecash " +
        "(usually a few sats; unused sats come back as change). Returns the answer and what it cost. " +
        "Use models to see models and prices, balance to see funds.",
      inputSchema: ChatInput,
      outputSchema: ChatOutput,
      annotations: {
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: false,
        openWorldHint: true,
      },
    },
    async (args, ctx) =>
      guarded(deps, "chat", async () => {
        await deps.ready();
        const models = await deps.gateway.models();
        if (models.length === 0)
          return fail(
            `no models online at ${deps.gateway.baseUrl} right now (no provider connected); try again shortly`,
          );
        const model = args.model
          ? models.find((m) => m.id === args.model)
          : pickDefaultModel(models, await deps.gateway.info().then((i) => i.default_model ?? null));
        if (!model)
          return fail(`model ${args.model} is not online; available: ${models.map((m) => m.id).join(", ")}`);
        const messages: ChatMessage[] = [
          ...(args.system ? [{ role: "system" as const, content: args.system }] : []),
          { role: "user", content: args.prompt },
        ];
        const maxTokens = args.max_tokens ?? DEFAULT_MAX_TOKENS;
        // A gateway that refuses X-Cashu but takes L402: pay its invoice by melting ecash.
        const methods = await deps.gatewayPaymentMethods();
        if (methods && !methods.includes("xcashu") && methods.includes("l402"))
          return chatWithL402(server, deps, ctx, args, {
            model: model.id,
            messages,
            maxTokens,
            temperature: args.temperature,
          });
        const pay = withMargin(estimateSats(model, estimatePromptTokens(messages), maxTokens));

        // Pay from a mint the gateway accepts, the one holding the most.
        const accepted = (await deps.gatewayMints()).map(normalizeMintUrl);
        const held = deps.wallet.balance();
        const usable = accepted
          .filter((m) => (held.mints[m] ?? 0) >= pay)
          .sort((a, b) => held.mints[b]! - held.mints[a]!);
        const mint = usable[0];
        if (!mint) {
          const atAccepted = accepted.reduce((s, m) => s + (held.mints[m] ?? 0), 0);
          if (held.total_sats >= pay && atAccepted < pay) {
            return fail(
              `insufficient balance at the gateway's mints: ${sats(atAccepted)} at ${accepted.join(", ") || "(none)"}, need ${pay}; ` +
                `the rest of your ecash is at mints this gateway does not accept. Use topup (it mints at ${accepted[0] ?? "the gateway's mint"}).`,
            );
          }
          return fail(`insufficient balance: ${sats(held.total_sats)}, need ${pay}; use topup`);
        }
        const pending = await approveSpend(server, deps, ctx, {
          tool: "chat",
          amountSat: pay,
          what: `pay for a chat request to ${model.id}`,
          args,
        });
        if (pending) return pending;

        const { id, token } = await deps.wallet.tokenForRequest(deps.gateway.baseUrl, pay, mint);
        deps.inflight.add(id);
        let answer;
        try {
          answer = await deps.gateway.chat(
            {
              model: model.id,
              messages,
              max_tokens: maxTokens,
              ...(args.temperature !== undefined ? { temperature: args.temperature } : {}),
            },
            { token, requestId: id },
            { signal: ctx.mcpReq.signal },
          );
        } catch (err) {
          deps.inflight.delete(id);
          if (err instanceof GatewayApiError && err.changeToken) {
            const back = await deps.wallet.finishRequest(id, err.changeToken).catch(() => null);
            const settled: SettleResult =
              back === null ? await deps.settleRequest(id) : { state: "changed", sats: back };
            return fail(`${errorText(err)}; ${describeSettle(settled)}`);
          }
          const settled = await deps.settleRequest(id);
          const cause =
            err instanceof GatewayUnavailableError || err instanceof GatewayApiError
              ? errorText(err)
              : ctx.mcpReq.signal.aborted
                ? "the request was cancelled"
                : errorText(err);
          return fail(`${cause}; ${describeSettle(settled)}`);
        }
        deps.inflight.delete(id);

        let received = 0;
        let changeSettled = true;
        try {
          if (answer.changeToken) received = await deps.wallet.finishRequest(id, answer.changeToken);
          else if ((answer.changeSats ?? 0) > 0)
            changeSettled = false; // owed but not sent: fetch it by id
          else await deps.wallet.finishRequest(id);
        } catch (err) {
          if (!(err instanceof EcashError)) throw err;
          deps.log.warn("could not store the change now; it stays claimable by request id", {
            id,
            err: err.message,
          });
          changeSettled = false;
        }
        if (!changeSettled) {
          const s = await deps.settleRequest(id);
          received = s.state === "changed" ? s.sats : 0;
          changeSettled = s.state !== "open";
        }
        const cost = answer.costSats ?? pay - received;
        const out = {
          ...completionView(answer.completion, model.id),
          cost_sats: cost,
          paid_sats: pay,
          change_sats: changeSettled ? received : (answer.changeSats ?? 0),
          balance_sats: deps.wallet.balance().total_sats,
          request_id: id,
        };
        deps.log.info("paid for a chat", {
          model: out.model,
          cost_sats: cost,
          change_sats: out.change_sats,
          request_id: id,
        });
        const footer =
          `[${out.model}: cost ${sats(cost)} (paid ${pay}, ${sats(out.change_sats)} change` +
          `${changeSettled ? "" : " still to collect"}); balance ${sats(out.balance_sats)}]`;
        return ok(out, `${out.answer}\n\n${footer}`);
      }),
  );
}
