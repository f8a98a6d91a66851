/**
 * `owlrun-mcp wallet …` from source, for tests that run the wallet CLI before it is wired into
 * src/cli.ts: `node --import tsx test/mcp/wallet-entry.ts <command> [flags]`.
 */
import { errorMessage } from "../../src/shared/index.js";
import { runWalletCommand } from "../../src/wallet/cli.js";

try {
  await runWalletCommand(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`owlrun-mcp: ${errorMessage(err)}\n`);
  process.exit(1);
}
