import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** A random 64-byte wallet seed kept in `dir/wallet-seed`, created on first start (0600). */
export function loadOrCreateSeed(dir: string): Uint8Array {
  const path = join(dir, "wallet-seed");
  if (!existsSync(path))
    writeFileSync(path, `${randomBytes(64).toString("hex")}\n`, { mode: 0o600, flag: "wx" });
  chmodSync(path, 0o600);
  return new Uint8Array(Buffer.from(readFileSync(path, "utf8").trim(), "hex"));
}
