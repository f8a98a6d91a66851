/** `owlrun-mcp mint`: the bundled Cashu mint on its own server, or `mint rotate-keyset`. */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { rotateKeyset, startMintServer } from "../../gateway/mint/index.js";
import { MINT_FLAGS, MINT_USAGE } from "../cli-options.js";
import {
  announceListening,
  ConfigError,
  createLogger,
  flagOrEnv,
  onShutdown,
  parseNonNegativeInt,
  parsePort,
  resolveDataDir,
} from "../shared/index.js";
import { databaseFromFlags, lightningFromFlags } from "./flags.js";

const log = createLogger("cli");

export async function runMint(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, options: MINT_FLAGS, allowPositionals: true });
  if (values.help) return void process.stdout.write(MINT_USAGE);
  const dataDir = join(resolveDataDir(flagOrEnv(values, "data-dir")), "mint");
  const inputFeePpk = parseNonNegativeInt("--input-fee-ppk", flagOrEnv(values, "input-fee-ppk"), 0);
  if (positionals.length > 0 && positionals[0] !== "rotate-keyset")
    throw new ConfigError(`unknown mint command "${positionals[0]}"`);
  const database = await databaseFromFlags(values, "owlrun-mint");
  if (positionals[0] === "rotate-keyset") {
    try {
      const { id, previous } = await rotateKeyset(dataDir, inputFeePpk, database);
      process.stdout.write(
        `active keyset ${id}${previous ? ` (previous ${previous} stays valid for redemption)` : ""}\n`,
      );
    } finally {
      await database?.close();
    }
    return;
  }
  const running = await startMintServer({
    dataDir,
    database,
    lightning: lightningFromFlags(values),
    inputFeePpk,
    host: flagOrEnv(values, "host"),
    port: parsePort(flagOrEnv(values, "port"), 3338),
    log: createLogger("mint"),
  });
  onShutdown(async () => {
    await running.close();
    await database?.close();
  }, log);
  announceListening(running.url);
}
