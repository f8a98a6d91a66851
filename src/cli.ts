#!/usr/bin/env node
/**
 * owlrun-mcp command line: the composition root, the only place that wires the mint, gateway,
 * provider and MCP server together (ARCHITECTURE.md §2). The commands that do live in commands/;
 * this file dispatches and turns errors into exit codes.
 */
import { runProviderCommand } from "../provider/index.js";
import { runDevnet, runGateway, runMint } from "./commands/index.js";
import { runMcpCommand } from "./mcp/index.js";
import { runWalletCommand } from "./wallet/cli.js";
import { USAGE } from "./cli-options.js";
import { ConfigError, errorMessage, VERSION } from "./shared/index.js";

export async function main(argv: string[]): Promise<number> {
  const [command = "stdio", ...rest] = argv;
  if (command === "--help" || command === "-h" || command === "help") {
    process.stdout.write(USAGE);
    return 0;
  }
  if (command === "--version" || command === "-v") {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  if (command === "mint") return runMint(rest).then(() => 0);
  if (command === "devnet") return runDevnet(rest).then(() => 0);
  if (command === "gateway") return runGateway(rest).then(() => 0);
  if (command === "provider") return runProviderCommand(rest).then(() => 0);
  if (command === "stdio" || command === "http") return runMcpCommand(command, rest).then(() => 0);
  if (command === "wallet") return runWalletCommand(rest).then(() => 0);
  if (command.startsWith("--")) return runMcpCommand("stdio", argv).then(() => 0);
  process.stderr.write(`owlrun-mcp: unknown command "${command}"\n\n${USAGE}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== 0) process.exit(code);
  },
  (err) => {
    process.stderr.write(`owlrun-mcp: ${errorMessage(err)}\n`);
    process.exit(
      err instanceof ConfigError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS") ? 2 : 1,
    );
  },
);
