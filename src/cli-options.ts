/** The command line's help texts: \`owlrun-mcp --help\` and each command's own \`--help\`. */
import { VERSION } from "./shared/index.js";

const COMMON = {
  port: { type: "string" },
  host: { type: "string" },
  "data-dir": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

export const MINT_FLAGS = {
  ...COMMON,
  lightning: { type: "string" },
  "fake-delay-ms": { type: "string" },
  "fake-pay-delay-ms": { type: "string" },
  "phoenixd-url": { type: "string" },
  "phoenixd-password": { type: "string" },
  "lnd-url": { type: "string" },
  "lnd-macaroon": { type: "string" },
  "lnd-macaroon-file": { type: "string" },
  "lnd-cert-file": { type: "string" },
  "cln-url": { type: "string" },
  "cln-rune": { type: "string" },
  "cln-cert-file": { type: "string" },
  "input-fee-ppk": { type: "string" },
  "database-url": { type: "string" },
} as const;

export type MintFlags = { [K in keyof typeof MINT_FLAGS]?: string | boolean };

export const GATEWAY_FLAGS = {
  ...MINT_FLAGS,
  "mint-url": { type: "string", multiple: true },
  "provider-share": { type: "string" },
  "price-feed": { type: "string" },
  "btc-usd": { type: "string" },
  "signup-closed": { type: "boolean" },
  "payout-threshold-sats": { type: "string" },
  "payout-interval-ms": { type: "string" },
  "stale-hold-ms": { type: "string" },
  "sweep-interval-ms": { type: "string" },
  "allow-loopback-lnurl": { type: "boolean" },
  "challenges-per-minute": { type: "string" },
  "payment-methods": { type: "string" },
  "bsv-chain-api": { type: "string" },
  "bsv-address": { type: "string" },
  "bsv-per-sat": { type: "string" },
  tier: { type: "string" },
  "credit-limit-sats": { type: "string" },
  "set-credit-limit": { type: "string" },
  "key-id": { type: "string" },
  name: { type: "string" },
  "public-url": { type: "string" },
  "mcp-url": { type: "string" },
  "default-model": { type: "string" },
  "free-max-tokens": { type: "string" },
  "free-daily-budget-sats": { type: "string" },
  "account-signups-per-hour": { type: "string" },
  "model-alias": { type: "string", multiple: true },
  prices: { type: "string" },
  upstream: { type: "string" },
  level: { type: "string" },
  "expires-in": { type: "string" },
  "expires-at": { type: "string" },
  from: { type: "string" },
} as const;

export const DEVNET_FLAGS = {
  ...COMMON,
  reset: { type: "boolean" },
  embedded: { type: "boolean" },
  "ollama-url": { type: "string" },
  "btc-usd": { type: "string" },
} as const;

export const USAGE = `owlrun-mcp ${VERSION}: buy and sell LLM inference with Bitcoin ecash

Usage:
  owlrun-mcp [stdio]        MCP server on stdio (what Claude Code runs)
  owlrun-mcp http           MCP over Streamable HTTP at /mcp
  owlrun-mcp gateway        the OpenAI/Ollama-compatible gateway with its bundled mint
  owlrun-mcp mint           the bundled Cashu mint alone
  owlrun-mcp provider       serve inference for sats (Ollama or embedded llama.cpp)
  owlrun-mcp devnet         mint + gateway + provider + MCP server on loopback, to try it all
  owlrun-mcp wallet <balance|pubkey|receive|send|topup|withdraw|restore>

\`owlrun-mcp <command> --help\` lists every flag of a command; each flag also reads OWLRUN_<FLAG>
from the environment (e.g. --data-dir: OWLRUN_DATA_DIR, --gateway: OWLRUN_GATEWAY_URL).
Long-running commands print \`listening <url>\` when ready; --port 0 picks a free port.
`;

const COMMON_HELP = `  --port N                    0 picks a free port
  --host H                    bind address (default 127.0.0.1)
  --data-dir DIR              default $OWLRUN_DATA_DIR or ~/.owlrun`;

const LIGHTNING_HELP = `  --lightning fake|phoenixd|lnd|cln   Lightning backend of the mint (default fake: invoices pay themselves)
  --phoenixd-url URL          default http://127.0.0.1:9740
  --phoenixd-password P       phoenixd's HTTP password
  --lnd-url URL               LND's REST API (https://host:8080)
  --lnd-macaroon-file F       LND admin macaroon (or --lnd-macaroon HEX)
  --lnd-macaroon HEX          LND admin macaroon as hex
  --lnd-cert-file F           LND's TLS certificate (self-signed nodes)
  --cln-url URL               Core Lightning's clnrest (https://host:3010)
  --cln-rune R                a clnrest rune allowed invoice, pay, listinvoices, listpays
  --cln-cert-file F           clnrest's TLS certificate (self-signed nodes)
  --fake-delay-ms N           fake backend: ms until an invoice counts as paid (default 1000)
  --fake-pay-delay-ms N       fake backend: ms an outgoing payment takes (default 0)
  --input-fee-ppk N           NUT-02 input fee, parts per thousand per proof (default 0)
  --database-url URL          postgres://… : keep the stores in PostgreSQL, shared by several processes
                              (default: SQLite files in the data dir)`;

export const MINT_USAGE = `owlrun-mcp mint [options]: the bundled Cashu mint alone (default port 3338)
owlrun-mcp mint rotate-keyset [--data-dir DIR] [--input-fee-ppk N]: new active keyset; old ones still redeem

${COMMON_HELP}
${LIGHTNING_HELP}
`;

export const GATEWAY_USAGE = `owlrun-mcp gateway [options]: the gateway (default port 8402); without --mint-url it runs the
bundled mint at <gateway>/mint
owlrun-mcp gateway provider-key [--data-dir DIR]: mint a provider key (owlr_prov_…)
owlrun-mcp gateway business-key --tier internal|partner|external [--name N] [--credit-limit-sats N] [--data-dir DIR]
    prints the key (bsvapi_sk_…, shown once) on stdout, its id on stderr; with --credit-limit-sats the key is
    metered: used with no payment header, owing up to N sats, billed on GET /v1/account/statement
owlrun-mcp gateway business-key --set-credit-limit N --key-id ID [--data-dir DIR]   (works while the gateway runs)
owlrun-mcp gateway broadcast "<message>" [--level info|warning|critical] [--expires-in 2h | --expires-at ISO]
owlrun-mcp gateway broadcast list | expire <id> [--data-dir DIR]   (works while the gateway runs)
owlrun-mcp gateway admin-token [--data-dir DIR]: the token of the /v1/admin/* routes
owlrun-mcp gateway migrate-sqlite --from DIR --database-url URL: move a stopped SQLite gateway (DIR is
  its data dir: DIR/gateway and the bundled mint DIR/mint) into an empty PostgreSQL database, in one
  transaction, with its books checked before and after (docs/scaling.md)

${COMMON_HELP}
  --mint-url URL              trust an external mint instead of the bundled one (repeatable)
  --provider-share PCT        providers' share of each charge (default 95)
  --price-feed URL            BTC/USD feed (default: none, the fixed --btc-usd rate)
  --btc-usd N                 BTC/USD without a feed, or while it is down (default 100000)
  --default-model ID          the model clients get when they name none, while online
  --payment-methods LIST      comma list of xcashu,accounts,l402,bsv (default: all configured)
  --bsv-chain-api URL --bsv-address ADDR [--bsv-per-sat N]   BSVAPI-style on-chain payments
  --signup-closed             refuse POST /v1/gateway/signup (providers need a key from provider-key)
  --payout-threshold-sats N   pay providers once they earned this much (default 1000)
  --payout-interval-ms N      how often payouts run (default 60000)
  --stale-hold-ms N           refund a hold nobody is serving once it is this old (default 600000; with
                              --database-url, keep it above a few cluster beats of 1 s)
  --sweep-interval-ms N       how often the stale-hold sweep runs (default 60000)
  --allow-loopback-lnurl      let Lightning addresses resolve on loopback (tests, the devnet; never private ranges)
  --challenges-per-minute N   unpaid 402 challenges one client address gets per minute (default 60)
  --free-max-tokens N         max_tokens of a free-tier request (default 256)
  --free-daily-budget-sats N  list price of all free-tier jobs per UTC day, gateway-wide (default 1000)
  --account-signups-per-hour N  POST /v1/auth/register per client address per hour (default 20)
  --model-alias NAME=MODEL    serve NAME with MODEL (repeatable; NAME may end with *; claude-… → the
                              most served model when unmapped)
  --prices FILE               USD per 1M tokens per model + a default (JSON), reloaded on change
  --upstream FILE             OpenAI-compatible upstream providers serving next to the nodes (JSON:
                              name, base_url, api_key_env, models with price or cost + margin_pct)
  --level, --expires-in, --expires-at   options of \`gateway broadcast\`
  --public-url URL            the URL clients reach the gateway at (for /llms.txt, /openapi.json)
  --mcp-url URL               a running \`owlrun-mcp http\` to advertise in the MCP server card
Bundled mint:
${LIGHTNING_HELP}
`;

export const DEVNET_USAGE = `owlrun-mcp devnet [options]: bundled mint + gateway + one provider + an MCP server, all on
loopback with fake Lightning; prints every URL, a paid curl line and the MCP client config
owlrun-mcp devnet invoice <sats>: a Lightning invoice from a second fake node that the devnet pays
as external (to try \`withdraw\`; the mint's own invoices count as already paid)

  --port N                    the gateway's port (default: the one this data dir used last, first
                              8402; a free one when taken). The MCP server likewise, first 8403
  --host H                    bind address (default 127.0.0.1)
  --data-dir DIR              default ./.devnet
  --reset                     delete the data dir first
  --embedded                  serve with in-process llama.cpp even when an Ollama answers
  --ollama-url URL            Ollama to serve from (default http://127.0.0.1:11434); without one
                              the embedded backend (needs \`npm i node-llama-cpp\`)
  --btc-usd N                 fixed BTC/USD rate (default 100000)
`;
