/**
 * `owlrun-mcp wallet` from a shell (run from source): the recovery phrase shown once, top-up over
 * (fake) Lightning, send and receive between two wallets, withdraw, and restore from the phrase.
 */
import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { externalInvoice } from "../support/blinded.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";

const ROOT = resolve(import.meta.dirname, "../..");
/** The built CLI (`npm test` builds first): `owlrun-mcp wallet …`. */
const CLI = resolve(import.meta.dirname, "../../dist/src/cli.js");

let mint: CliProcess;
beforeAll(async () => {
  mint = await startCli(["mint", "--port", "0", "--data-dir", tempDir(), "--fake-delay-ms", "100"]);
});
afterAll(async () => {
  await mint?.stop();
});

function wallet(
  dir: string,
  ...args: string[]
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [CLI, "wallet", ...args, "--data-dir", dir], {
      cwd: ROOT,
      env: { ...process.env, OWLRUN_MINT_URL: mint.url, OWLRUN_LOG_LEVEL: "warn" },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("exit", (code) => done({ code, stdout, stderr }));
  });
}

describe("owlrun-mcp wallet", () => {
  it("shows the phrase once, tops up, sends, receives, withdraws and restores from the phrase", async () => {
    const alice = tempDir("owlrun-wallet-a-");
    const first = await wallet(alice, "balance");
    expect(first.code).toBe(0);
    const phrase = /recovery phrase[^\n]*\n\n\s+([a-z ]+)\n/.exec(first.stdout)?.[1];
    expect(phrase?.split(" ")).toHaveLength(12);
    expect(first.stdout).toContain("balance: 0 sats");
    const second = await wallet(alice, "balance");
    expect(second.stdout).not.toContain(phrase);

    const top = await wallet(alice, "topup", "300", "--timeout", "20");
    expect(top.code, top.stderr).toBe(0);
    expect(top.stdout).toMatch(/lnbc/);
    expect(top.stdout).toContain("received 300 sats; balance 300 sats");

    const sent = await wallet(alice, "send", "40", "--json");
    const token = JSON.parse(sent.stdout.trim()).token as string;
    expect(token).toMatch(/^cashuB/);
    const bob = tempDir("owlrun-wallet-b-");
    const got = await wallet(bob, "receive", token, "--json");
    expect(JSON.parse(got.stdout.trim().split("\n").pop()!)).toMatchObject({
      received_sats: 40,
      balance_sats: 40,
    });

    const paid = await wallet(alice, "withdraw", externalInvoice(50));
    expect(paid.stdout).toContain("paid 50 sats (fee 1); balance 209 sats");

    const usage = await wallet(alice, "send", "zero");
    expect(usage.code).toBe(2); // usage errors exit 2, like every owlrun-mcp command
    expect(usage.stderr).toContain("send <sats> must be a whole number of sats above 0");

    const restored = await wallet(tempDir("owlrun-wallet-r-"), "restore", "--phrase", phrase!);
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stdout).toContain("restored 209 sats");
  });
});
