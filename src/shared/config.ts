import { chmodSync, mkdirSync } from "node:fs";
import { homedir } from "node:os";
import { resolve } from "node:path";
import { ConfigError } from "./errors.js";

export const DEFAULT_HOST = "127.0.0.1";

/** Data dir precedence: flag, then OWLRUN_DATA_DIR, then ~/.owlrun. Created with 0700. */
export function resolveDataDir(flag?: string): string {
  return privateDir(resolve(flag ?? process.env.OWLRUN_DATA_DIR ?? `${homedir()}/.owlrun`));
}

/**
 * Makes `dir` (and missing parents) and leaves it 0700: data dirs hold wallets, seeds and keys, and
 * a directory an older version made 0755 is tightened too.
 */
export function privateDir(dir: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  return dir;
}

export function parsePort(value: string | undefined, fallback: number): number {
  if (value === undefined || value === "") return fallback;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new ConfigError(`invalid port "${value}": use 0..65535 (0 picks a free port)`);
  }
  return port;
}

export function parseNonNegativeInt(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new ConfigError(`invalid ${name} "${value}": expected an integer >= 0`);
  return n;
}

/** Reads a flag value, falling back to the OWLRUN_<NAME> environment variable. */
export function flagOrEnv(flags: Record<string, unknown>, name: string): string | undefined {
  const v = flags[name];
  if (typeof v === "string") return v;
  const envName = `OWLRUN_${name.replace(/-/g, "_").toUpperCase()}`;
  return process.env[envName];
}
