/**
 * Claude Code itself (`@anthropic-ai/claude-code` from npm, its native binary) in print mode against
 * a devnet: `ANTHROPIC_BASE_URL=<gateway>`, `ANTHROPIC_AUTH_TOKEN=<cashu token>`, the scripted test
 * model served by the embedded provider. It sends its real ~48 KB turn (system prompt, a dozen tools,
 * `max_tokens: 32000`, `?beta=true`) and prints the scripted answer; the token's change is then
 * withdrawn with the same token as the key. Runs offline (non-essential traffic off, HOME a temp dir).
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { getEncodedToken, type Wallet } from "@cashu/cashu-ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SCRIPTED_ANSWER, SCRIPTED_MODEL_ID } from "../../provider/index.js";
import { mintProofs, newWallet, sumAmounts } from "../support/cashu.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";
import { postJson } from "../support/payments.js";

/** The claude binary: the wrapper's bin (postinstall copies it there), else the platform package's. */
function claudeBinary(): string | undefined {
  const require = createRequire(import.meta.url);
  try {
    const root = dirname(require.resolve("@anthropic-ai/claude-code/package.json"));
    const bin = join(root, "bin", "claude.exe");
    if (existsSync(bin)) return bin;
    const platform = dirname(
      require.resolve(`@anthropic-ai/claude-code-${process.platform}-${process.arch}/package.json`),
    );
    const native = join(platform, "claude");
    return existsSync(native) ? native : undefined;
  } catch {
    return undefined;
  }
}

/** Runs a program to its end (killed after `timeoutMs`), stdin closed. */
function runCommand(
  cmd: string,
  args: string[],
  opts: { cwd: string; env: Record<string, string>; timeoutMs: number },
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const claude = claudeBinary();
let devnet: CliProcess;
let gatewayUrl: string;
let mintUrl: string;
let wallet: Wallet;

beforeAll(async () => {
  if (!claude) return;
  devnet = await startCli(["devnet", "--port", "0", "--data-dir", tempDir()], {}, 60_000);
  gatewayUrl = /gateway {3}(http:\/\/\S+)/.exec(devnet.stdout())![1]!;
  mintUrl = /mint {6}(http:\/\/\S+)/.exec(devnet.stdout())![1]!;
  wallet = await newWallet(mintUrl);
}, 90_000);
afterAll(async () => {
  if (devnet) expect(await devnet.stop()).toBe(0);
});

describe("Claude Code against the gateway", () => {
  it.skipIf(!claude)(
    "claude -p prints the scripted answer, paid by a cashu token whose change is claimable",
    async () => {
      const paid = 60;
      const cashu = getEncodedToken({ mint: mintUrl, proofs: await mintProofs(wallet, paid) });
      const home = tempDir();
      const run = await runCommand(claude!, ["-p", "say hi"], {
        cwd: home,
        timeoutMs: 570_000, // a loaded 2-core machine reads the ~17k-token prompt slowly
        env: {
          HOME: home,
          PATH: process.env.PATH ?? "",
          ANTHROPIC_BASE_URL: gatewayUrl,
          ANTHROPIC_AUTH_TOKEN: cashu,
          ANTHROPIC_MODEL: SCRIPTED_MODEL_ID,
          CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
        },
      });
      expect(run.stderr).not.toMatch(/API Error/);
      expect(run.code).toBe(0);
      expect(run.stdout.trim()).toBe(SCRIPTED_ANSWER);

      const auth = { authorization: `Bearer ${cashu}` };
      const balance = (await (await fetch(`${gatewayUrl}/v1/balance`, { headers: auth })).json()) as {
        balance_sats: number;
      };
      expect(balance.balance_sats).toBeGreaterThan(0);
      expect(balance.balance_sats).toBeLessThan(paid);
      const w = await postJson(`${gatewayUrl}/v1/balance/withdraw`, {}, auth);
      expect(w.status).toBe(200);
      const out = (await w.json()) as { token: string; amount_sats: number };
      expect(out.amount_sats).toBe(balance.balance_sats);
      expect(sumAmounts(await wallet.receive(out.token))).toBe(out.amount_sats);
    },
    600_000,
  );
});
