/**
 * /llms-full.txt: the payment flows step by step, with curl lines filled in with this gateway's
 * URL and a model it serves. test/discovery runs every ```bash block against a live gateway, so
 * the examples stay true.
 */
import { openApiPath, type RouteGroup } from "../../src/shared/discovery/index.js";

export interface LlmsFullContext {
  baseUrl: string;
  /** a model online now (examples use it) */
  model: string;
  mintUrl?: string;
  groups: RouteGroup[];
}

const fence = (lang: string, ...lines: string[]) => ["```" + lang, ...lines, "```", ""];

export function llmsFullTxt(ctx: LlmsFullContext): string {
  const b = ctx.baseUrl;
  const chat = (content: string, extra = "") =>
    `'{"model":"${ctx.model}","messages":[{"role":"user","content":"${content}"}],"max_tokens":50${extra}}'`;
  const curl = "curl -sS --fail-with-body";
  const reference = ctx.groups.flatMap((g) => [
    `### ${g.name}${g.prefix ? ` (under ${g.prefix})` : ""}`,
    "",
    g.description,
    "",
    ...g.routes.map(
      (r) =>
        `- \`${r.method.toUpperCase()} ${openApiPath((g.prefix ?? "") + r.path)}\`${r.security ? ` [${r.security.join(" | ")}]` : ""}: ${r.summary}`,
    ),
    "",
  ]);
  return [
    "# Owlrun gateway: payment flows in full",
    "",
    `> OpenAI-compatible LLM inference at ${b}/v1, paid per request with Bitcoin ecash (Cashu) or from a prepaid account. Prices are in sats; nothing is charged for refused or malformed requests.`,
    "",
    "Every `bash` block below runs as is against this gateway once `CASHU_TOKEN` holds a Cashu token",
    `(cashuA… or cashuB…) of at least 50 sats from a mint it trusts${ctx.mintUrl ? ` (the bundled mint: ${ctx.mintUrl})` : ""}; see GET /v1/info for the list.`,
    'Errors are JSON `{"error":{"message","type","code"}}` with a stable `type` word.',
    "",
    "## 1. Get ecash",
    "",
    "With the owlrun-mcp wallet (any Cashu wallet works: Cashu.me, Minibits, Nutstash…):",
    "",
    ...fence(
      "sh",
      `npx owlrun-mcp wallet topup 1000 --mint-url ${ctx.mintUrl ?? `${b}/mint`}   # pay the Lightning invoice it shows`,
      `export CASHU_TOKEN=$(npx owlrun-mcp wallet send 50 --mint-url ${ctx.mintUrl ?? `${b}/mint`})`,
    ),
    "## 2. See models and prices (free)",
    "",
    ...fence("bash", `${curl} ${b}/v1/models`, `${curl} ${b}/v1/info`),
    "Prices: `pricing` is USD per 1M tokens; `routecat_pricing` also gives sats per 1M tokens at today's rate.",
    "A request costs max(2 sats, ceil(cost)).",
    "",
    "## 3. Pay one request with X-Cashu (zero custody)",
    "",
    "The gateway claims the token, reserves what the request could cost, runs it and returns the rest",
    "as a fresh token in the `X-Cashu-Change` response header. `X-Cost-Sats` says what it cost.",
    "",
    ...fence(
      "bash",
      `${curl} -D headers.txt ${b}/v1/chat/completions \\`,
      `  -H "Content-Type: application/json" -H "X-Cashu: $CASHU_TOKEN" \\`,
      `  -d ${chat("Hello!")}`,
      "grep -i '^x-cashu-change:' headers.txt   # your change: a fresh token to keep",
      "REQUEST_ID=$(grep -i '^x-owlrun-request-id:' headers.txt | cut -d' ' -f2 | tr -d '\\r')",
      "# a client that lost the answer claims its change later:",
      `${curl} ${b}/v1/cashu/change/$REQUEST_ID`,
    ),
    "## 4. Streaming with X-Cashu",
    "",
    'With `"stream": true` the answer is Server-Sent Events in OpenAI\'s chunk format; each line also',
    "carries Owlrun's `message.content`. The last chunk before `data: [DONE]` has the usage and is",
    'also the change: `{"type":"cashu_change","token":"cashu…","change_sats":N}`.',
    "",
    ...fence(
      "bash",
      `${curl} -N ${b}/v1/chat/completions \\`,
      `  -H "Content-Type: application/json" -H "X-Cashu: $CASHU_TOKEN" \\`,
      `  -d ${chat("Count to three.", ',"stream":true')}`,
    ),
    "## 5. A Cashu token as the API key (Routstr style)",
    "",
    "Any OpenAI client can pay: put the token where the API key goes. It becomes a session holding",
    "the token's value; later requests with the same token spend from it.",
    "",
    ...fence(
      "bash",
      `${curl} ${b}/v1/chat/completions \\`,
      `  -H "Content-Type: application/json" -H "Authorization: Bearer $CASHU_TOKEN" \\`,
      `  -d ${chat("Hello!")}`,
    ),
    "### Anthropic Messages API (Claude Code, the Anthropic SDKs)",
    "",
    "`POST /v1/messages` takes the same credentials in `x-api-key` (or Bearer, or X-Cashu) and answers",
    "Anthropic's message object (`stream: true`: Anthropic's events, then `cashu_change` for X-Cashu).",
    "Claude Code: `ANTHROPIC_BASE_URL=" + b + " ANTHROPIC_AUTH_TOKEN=$CASHU_TOKEN claude`; `claude-…` model",
    "names map to served models (`--model-alias`, else the model most nodes serve).",
    "",
    ...fence(
      "bash",
      `${curl} ${b}/v1/messages -H "x-api-key: $CASHU_TOKEN" -H "anthropic-version: 2023-06-01" \\`,
      `  -H "Content-Type: application/json" \\`,
      `  -d '{"model":"${ctx.model}","max_tokens":50,"messages":[{"role":"user","content":"Hello!"}]}'`,
    ),
    "## 6. An account: rc_ key, deposit, spend, withdraw",
    "",
    "An rc_ key has a small free daily quota; deposit ecash (or top up over Lightning) for more.",
    "",
    ...fence(
      "bash",
      `KEY=$(${curl} -X POST ${b}/v1/auth/register -H "Content-Type: application/json" -d '{}' | jq -r .api_key)`,
      `${curl} -X POST ${b}/v1/balance/topup -H "Authorization: Bearer $KEY" -H "X-Cashu: $CASHU_TOKEN"`,
      `${curl} ${b}/v1/chat/completions -H "Authorization: Bearer $KEY" \\`,
      `  -H "Content-Type: application/json" -d ${chat("Hello!")}`,
      `${curl} ${b}/v1/balance -H "Authorization: Bearer $KEY"`,
      "# the whole balance back as a token:",
      `${curl} -X POST ${b}/v1/balance/withdraw -H "Authorization: Bearer $KEY" -H "Content-Type: application/json" -d '{}'`,
    ),
    "Lightning instead of ecash: ask for an invoice, pay it from any Lightning wallet; GET /v1/balance",
    "credits it once paid.",
    "",
    ...fence(
      "bash",
      `KEY=$(${curl} -X POST ${b}/v1/auth/register -H "Content-Type: application/json" -d '{}' | jq -r .api_key)`,
      `${curl} -X POST ${b}/v1/auth/topup -H "Authorization: Bearer $KEY" \\`,
      `  -H "Content-Type: application/json" -d '{"amount_sats":100}'`,
    ),
    "Agents get child keys that spend the account within caps: `POST /v1/keys` with",
    '`{"name":"agent-1","caps":{"per_request_sats":20,"per_day_sats":500}}`.',
    "",
    "## 7. A session key from ecash (sk-)",
    "",
    ...fence(
      "bash",
      `SK=$(${curl} -X POST ${b}/v1/balance/create -H "X-Cashu: $CASHU_TOKEN" | jq -r .api_key)`,
      `${curl} ${b}/v1/balance -H "Authorization: Bearer $SK"`,
    ),
    "## 8. Price first, then pay without an account (402, L402, NUT-24, prepaid keys)",
    "",
    "`POST /v1/price` answers, with no auth, the sats a request would be held at right now. A paid route",
    "called without credentials answers 402 with `type: payment_required` and every way to pay it:",
    '`WWW-Authenticate: L402 macaroon="…", invoice="…"` (pay the invoice, retry with',
    "`Authorization: L402 <macaroon>:<preimage>`: one served request per payment), and a NUT-24",
    "`X-Cashu: creqA…` payment request (a Cashu wallet retries with `X-Cashu: <token>`).",
    "Paid answers carry a `payment` receipt (method, amount_sats, request_id).",
    "",
    ...fence(
      "bash",
      `${curl} -X POST ${b}/v1/price -H "Content-Type: application/json" -d ${chat("Hello!")}`,
      `curl -sS -i ${b}/v1/chat/completions -H "Content-Type: application/json" -d ${chat("Hello!")}`,
    ),
    'Prepaid keys (402ai): `POST /v1/topup {"amount_sats":1000}` answers an invoice; once paid,',
    '`POST /v1/topup/claim {"preimage":"…"}` answers an `sk-` key to use as the Bearer key',
    "(send `Authorization: Bearer <key>` to the top-up to refill that key instead).",
    "",
    ...fence(
      "bash",
      `${curl} -X POST ${b}/v1/topup -H "Content-Type: application/json" -d '{"amount_sats":100}'`,
    ),
    "## 9. From an MCP client",
    "",
    "The owlrun-mcp server keeps a local Cashu wallet and pays this gateway for you (tools `chat`, `models`,",
    "`balance`, `topup`, `receive`, `send`, `withdraw`):",
    "",
    ...fence("sh", `claude mcp add owlrun -e OWLRUN_GATEWAY_URL=${b} -- npx owlrun-mcp`),
    "## Route reference",
    "",
    `Full schemas: ${b}/openapi.json (OpenAPI 3.1).`,
    "",
    ...reference,
  ].join("\n");
}
