/** `models`: what the gateway serves right now, with prices in sats. Read-only. */
import type { McpServer } from "@modelcontextprotocol/server";
import * as z from "zod";
import type { GatewayModel } from "../src/client/index.js";
import { guarded, ok, type ToolDeps } from "./support.js";

export const ModelsOutput = z.object({
  gateway: z.string(),
  models: z.array(
    z.object({
      id: z.string().describe("model name to pass to chat"),
      providers: z.number().int().nonnegative().nullable().describe("provider nodes online for it"),
      input_sats_per_1m: z.number().nullable().describe("sats per 1M prompt tokens"),
      output_sats_per_1m: z.number().nullable().describe("sats per 1M completion tokens"),
      input_usd_per_1m: z.number().nullable(),
      output_usd_per_1m: z.number().nullable(),
    }),
  ),
});

export function modelRow(m: GatewayModel) {
  return {
    id: m.id,
    providers: m.providers ?? null,
    input_sats_per_1m: m.routecat_pricing?.input_per_1m_tokens_sats ?? null,
    output_sats_per_1m: m.routecat_pricing?.output_per_1m_tokens_sats ?? null,
    input_usd_per_1m: m.pricing?.per_m_input_usd ?? m.routecat_pricing?.input_per_1m_tokens_usd ?? null,
    output_usd_per_1m: m.pricing?.per_m_output_usd ?? m.routecat_pricing?.output_per_1m_tokens_usd ?? null,
  };
}

export function registerModelsTool(server: McpServer, deps: ToolDeps): void {
  server.registerTool(
    "models",
    {
      title: "Models and prices",
      description:
        "LLM models the gateway can serve right now, with prices in sats per 1M input/output tokens. " +
        "Every paid request costs at least 2 sats. Free to call.",
      inputSchema: z.object({}),
      outputSchema: ModelsOutput,
      annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: true },
    },
    async () =>
      guarded(deps, "models", async () => {
        const models = (await deps.gateway.models()).map(modelRow);
        const out = { gateway: deps.gateway.baseUrl, models };
        const fmt = (v: number | null) => (v === null ? "?" : String(v));
        const text =
          models.length === 0
            ? `no models online at ${deps.gateway.baseUrl} right now (no provider connected); try again shortly`
            : [
                `models at ${deps.gateway.baseUrl} (sats per 1M tokens, input / output; minimum 2 sats a request):`,
                ...models.map(
                  (m) =>
                    `  ${m.id}: ${fmt(m.input_sats_per_1m)} / ${fmt(m.output_sats_per_1m)}` +
                    (m.providers !== null ? ` (${m.providers} provider${m.providers === 1 ? "" : "s"})` : ""),
                ),
              ].join("\n");
        return ok(out, text);
      }),
  );
}
