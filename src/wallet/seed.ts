/**
 * The wallet's BIP-39 recovery phrase: created on first run, stored 0600, shown once by
 * `owlrun-mcp wallet`. The NUT-13 seed is derived from it, so the phrase alone restores the ecash.
 */
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { generateMnemonic, mnemonicToSeedSync, validateMnemonic } from "@scure/bip39";
import { wordlist } from "@scure/bip39/wordlists/english.js";
import { ConfigError } from "../shared/index.js";

const FILE = "mnemonic";

export interface LoadedSeed {
  mnemonic: string;
  seed: Uint8Array;
  /** true on the run that created it: the one time the phrase is shown */
  created: boolean;
}

export function isValidMnemonic(phrase: string): boolean {
  return validateMnemonic(phrase.trim().toLowerCase().split(/\s+/).join(" "), wordlist);
}

export function loadOrCreateMnemonic(dir: string, restoreFrom?: string): LoadedSeed {
  const path = join(dir, FILE);
  let created = false;
  if (!existsSync(path)) {
    const phrase = restoreFrom
      ? restoreFrom.trim().toLowerCase().split(/\s+/).join(" ")
      : generateMnemonic(wordlist, 128);
    if (!validateMnemonic(phrase, wordlist))
      throw new ConfigError("that is not a valid BIP-39 recovery phrase");
    writeFileSync(path, `${phrase}\n`, { mode: 0o600, flag: "wx" });
    created = true;
  }
  chmodSync(path, 0o600);
  const mnemonic = readFileSync(path, "utf8").trim();
  if (restoreFrom && !created && mnemonic !== restoreFrom.trim().toLowerCase().split(/\s+/).join(" ")) {
    throw new ConfigError(
      `${path} already holds a different recovery phrase; use another --data-dir to restore`,
    );
  }
  return { mnemonic, seed: mnemonicToSeedSync(mnemonic), created };
}
