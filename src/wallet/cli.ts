/**
 * `owlrun-mcp wallet <balance|pubkey|receive|send|topup|withdraw|restore>`: the MCP server's local wallet
 * from a shell. The first command run shows the recovery phrase, once.
 */
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import QRCode from "qrcode";
import { DEFAULT_GATEWAY_URL, GatewayClient } from "../client/index.js";
import { normalizeMintUrl } from "../shared/ecash/index.js";
import {
  ConfigError,
  createLogger,
  flagOrEnv,
  parseNonNegativeInt,
  resolveDataDir,
} from "../shared/index.js";
import { LocalWallet } from "./index.js";

export const WALLET_USAGE = `owlrun-mcp wallet: the local Cashu wallet the MCP server pays with

  owlrun-mcp wallet balance
  owlrun-mcp wallet pubkey                      (the key others lock ecash to for this wallet)
  owlrun-mcp wallet receive <cashu token> [--preimage HEX]
  owlrun-mcp wallet send <sats> [--mint-url URL] [--lock-to PUBKEY]
  owlrun-mcp wallet topup <sats> [--mint-url URL] [--no-wait] [--timeout SECONDS]
  owlrun-mcp wallet withdraw <bolt11 invoice | name@domain> [--amount SATS] [--mint-url URL]
  owlrun-mcp wallet restore [--phrase "twelve words …"] [--mint-url URL]

Options (also read from OWLRUN_<NAME>): --data-dir DIR (default ~/.owlrun), --gateway URL (env
OWLRUN_GATEWAY_URL; its first mint is the default mint; default ${DEFAULT_GATEWAY_URL}), --mint-url URL,
--max-per-call N, --max-per-day N, --allow-loopback-lnurl, --json.
restore also reads the phrase from OWLRUN_RECOVERY_PHRASE.
`;

export const WALLET_FLAGS = {
  "data-dir": { type: "string" },
  gateway: { type: "string" },
  "mint-url": { type: "string" },
  amount: { type: "string" },
  phrase: { type: "string" },
  preimage: { type: "string" },
  "lock-to": { type: "string" },
  "no-wait": { type: "boolean" },
  timeout: { type: "string" },
  "max-per-call": { type: "string" },
  "max-per-day": { type: "string" },
  "allow-loopback-lnurl": { type: "boolean" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

const PHRASE_SHOWN = "phrase-shown";

function positiveSats(name: string, value: string | undefined): number {
  const n = Number(value);
  if (value === undefined || !Number.isSafeInteger(n) || n <= 0)
    throw new ConfigError(
      `${name} must be a whole number of sats above 0${value ? ` (got "${value}")` : ""}`,
    );
  return n;
}

export async function runWalletCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, options: WALLET_FLAGS, allowPositionals: true });
  const [command, ...rest] = positionals;
  if (values.help || !command) return void process.stdout.write(WALLET_USAGE);
  const known = ["balance", "pubkey", "receive", "send", "topup", "withdraw", "restore"];
  if (!known.includes(command))
    throw new ConfigError(`unknown wallet command "${command}"\n\n${WALLET_USAGE}`);

  const out = (text: string, json: unknown) =>
    process.stdout.write(values.json ? `${JSON.stringify(json)}\n` : `${text}\n`);
  const dataDir = resolveDataDir(flagOrEnv(values, "data-dir"));
  const log = createLogger("wallet");
  const phrase = command === "restore" ? (values.phrase ?? process.env.OWLRUN_RECOVERY_PHRASE) : undefined;
  const wallet = LocalWallet.open(dataDir, log, {
    limits: {
      perCallSat: parseNonNegativeInt("--max-per-call", flagOrEnv(values, "max-per-call"), 1000),
      perDaySat: parseNonNegativeInt("--max-per-day", flagOrEnv(values, "max-per-day"), 10_000),
    },
    restoreFrom: phrase,
  });
  try {
    // The recovery phrase, shown once: on the first wallet command (the MCP server may have created it).
    const marker = join(dataDir, "wallet", PHRASE_SHOWN);
    if (!existsSync(marker)) {
      if (!phrase && !values.json) {
        process.stdout.write(
          [
            "Your wallet's recovery phrase (shown this one time; write it down, it restores all the ecash):",
            "",
            `    ${wallet.mnemonic}`,
            "",
            `It is stored in ${join(dataDir, "wallet", "mnemonic")} (mode 0600).`,
            "",
            "",
          ].join("\n"),
        );
      }
      writeFileSync(marker, `${new Date().toISOString()}\n`, { mode: 0o600 });
    }

    const gateway = new GatewayClient({
      baseUrl: values.gateway ?? (process.env.OWLRUN_GATEWAY_URL || process.env.OWLRUN_GATEWAY),
    });
    const mintUrl = async () => {
      const flag = flagOrEnv(values, "mint-url");
      if (flag) return normalizeMintUrl(flag);
      const first = (await gateway.info()).mints[0];
      if (!first) throw new ConfigError("the gateway lists no mint; pass --mint-url");
      return normalizeMintUrl(first);
    };

    if (command !== "restore") await wallet.recover().catch(() => undefined);

    switch (command) {
      case "balance": {
        for (const t of wallet.pendingTopups()) await wallet.topupStatus(t.quote).catch(() => undefined);
        const b = wallet.balance();
        const lines = [
          `balance: ${b.total_sats} sats`,
          ...Object.entries(b.mints).map(([m, s]) => `  ${m}: ${s} sats`),
          `spent today: ${wallet.spentToday()} of ${wallet.limits.perDaySat} sats`,
        ];
        out(lines.join("\n"), { ...b, spent_today_sats: wallet.spentToday() });
        return;
      }
      case "pubkey": {
        out(wallet.lockPubkey(), { pubkey: wallet.lockPubkey() });
        return;
      }
      case "receive": {
        const token = rest[0];
        if (!token) throw new ConfigError("usage: owlrun-mcp wallet receive <cashu token> [--preimage HEX]");
        const r = await wallet.receive(token, { preimage: values.preimage });
        out(`received ${r.amountSat} sats from ${r.mint}; balance ${wallet.balance().total_sats} sats`, {
          received_sats: r.amountSat,
          mint: r.mint,
          balance_sats: wallet.balance().total_sats,
        });
        return;
      }
      case "send": {
        const amount = positiveSats("send <sats>", rest[0]);
        const mint = flagOrEnv(values, "mint-url");
        const lockTo = values["lock-to"];
        const r = await wallet.send(amount, mint ? normalizeMintUrl(mint) : undefined, "B", lockTo);
        out(r.token, {
          token: r.token,
          amount_sats: amount,
          mint: r.mint,
          ...(lockTo ? { locked_to: lockTo } : {}),
        });
        return;
      }
      case "topup": {
        const amount = positiveSats("topup <sats>", rest[0]);
        const mint = await mintUrl();
        const q = await wallet.topup(mint, amount);
        if (values.json) out("", { quote: q.quote, invoice: q.request, amount_sats: amount, mint });
        else {
          const qr = await QRCode.toString(`lightning:${q.request.toUpperCase()}`, {
            type: "terminal",
            small: true,
          });
          process.stdout.write(`Pay ${amount} sats to ${mint}:\n\n${qr}\n${q.request}\n\n`);
        }
        if (values["no-wait"]) {
          if (!values.json) out(`quote ${q.quote}: run \`owlrun-mcp wallet balance\` once paid`, null);
          return;
        }
        const timeoutMs = parseNonNegativeInt("--timeout", flagOrEnv(values, "timeout"), 600) * 1000;
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const s = await wallet.topupStatus(q.quote);
          if (s.state === "claimed") {
            out(`received ${amount} sats; balance ${wallet.balance().total_sats} sats`, {
              quote: q.quote,
              state: "claimed",
              balance_sats: wallet.balance().total_sats,
            });
            return;
          }
          if (Date.now() > deadline) {
            out(`not paid yet; run \`owlrun-mcp wallet balance\` later to claim it (quote ${q.quote})`, {
              quote: q.quote,
              state: "pending",
            });
            return;
          }
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
      case "withdraw": {
        const destination = rest[0];
        if (!destination)
          throw new ConfigError(
            "usage: owlrun-mcp wallet withdraw <bolt11 invoice | name@domain> [--amount SATS]",
          );
        const amount = values.amount ? positiveSats("--amount", values.amount) : undefined;
        const mint = flagOrEnv(values, "mint-url");
        const r = await wallet.withdraw(destination, {
          amountSat: amount,
          mint: mint ? normalizeMintUrl(mint) : undefined,
          lnurl: { allowLoopbackHttp: values["allow-loopback-lnurl"] ?? false },
        });
        const text =
          r.paidSat > 0
            ? `paid ${r.paidSat} sats (fee ${r.feeSat}); balance ${wallet.balance().total_sats} sats`
            : "the mint is still sending the payment; the ecash stays reserved until it settles";
        out(text, { paid_sats: r.paidSat, fee_sats: r.feeSat, preimage: r.preimage, mint: r.mint });
        return;
      }
      case "restore": {
        const mint = await mintUrl();
        const r = await wallet.restore(mint);
        out(
          `restored ${r.restoredSat} sats (${r.proofs} proofs) from ${mint}; balance ${wallet.balance().total_sats} sats`,
          { restored_sats: r.restoredSat, proofs: r.proofs, mint, balance_sats: wallet.balance().total_sats },
        );
        return;
      }
    }
  } finally {
    wallet.close();
  }
}
