/**
 * `owlrun-mcp stdio` from source, for tests that spawn the stdio server before the CLI is wired:
 * `node --import tsx test/mcp/stdio-entry.ts [flags]`.
 */
import { runMcpCommand } from "../../src/mcp/index.js";

await runMcpCommand("stdio", process.argv.slice(2));
