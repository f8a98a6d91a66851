/**
 * The command line as a newcomer reads it: each command's `--help` is its own and lists every flag
 * its parser accepts (checked against the parseArgs tables themselves, so a new flag without help
 * fails here), and `owlrun-mcp http` prints its MCP endpoint with `/mcp`.
 */
import { describe, expect, it } from "vitest";
import { PROVIDER_FLAGS } from "../../provider/index.js";
import { DEVNET_FLAGS, GATEWAY_FLAGS, MINT_FLAGS } from "../../src/cli-options.js";
import { MCP_FLAGS } from "../../src/mcp/index.js";
import { WALLET_FLAGS } from "../../src/wallet/cli.js";
import { runCli, startCli, tempDir } from "../support/cli-process.js";

const commands: [string, Record<string, unknown>][] = [
  ["gateway", GATEWAY_FLAGS],
  ["mint", MINT_FLAGS],
  ["devnet", DEVNET_FLAGS],
  ["provider", PROVIDER_FLAGS],
  ["http", MCP_FLAGS],
  ["wallet", WALLET_FLAGS],
];

describe("owlrun-mcp <command> --help", () => {
  it.each(commands)("%s --help lists every flag it accepts", async (command, flags) => {
    const { code, stdout } = await runCli([command, "--help"]);
    expect(code).toBe(0);
    expect(stdout).toContain(`owlrun-mcp ${command}`);
    const missing = Object.keys(flags).filter((f) => f !== "help" && !stdout.includes(`--${f}`));
    expect(missing, `${command} --help does not mention`).toEqual([]);
  });

  it("the top-level help points at each command's own help", async () => {
    const { stdout } = await runCli(["--help"]);
    expect(stdout).toContain("owlrun-mcp <command> --help");
    expect(stdout).not.toContain("--payout-threshold-sats");
  });
});

describe("owlrun-mcp http", () => {
  it("prints the MCP endpoint with /mcp before `listening`", async () => {
    const http = await startCli([
      "http",
      "--port",
      "0",
      "--data-dir",
      tempDir(),
      "--gateway",
      "http://127.0.0.1:9",
    ]);
    try {
      expect(http.stdout()).toContain(`MCP endpoint ${http.url}/mcp\n`);
    } finally {
      await http.stop();
    }
  });
});
