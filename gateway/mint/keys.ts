/**
 * Keysets derived from one master secret: keyset n of a unit uses the BIP32 seed
 * HMAC-SHA256(master, "owlrun-mint/keyset/<unit>/<n>"), so only the secret file needs a backup.
 * Old keysets stay loaded (inactive) so their proofs can still be redeemed.
 */
import { createHmac, randomBytes } from "node:crypto";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createNewMintKeys } from "@cashu/cashu-ts";
import { fromHex, toHex } from "./crypto.js";
import type { KeysetRow, MintStore } from "./store.js";

/** Amounts 2^0 … 2^(AMOUNT_BITS-1): up to 2^31 sats per proof keeps every amount a safe JS integer. */
export const AMOUNT_BITS = 32;
const MASTER_FILE = "master-secret";

export interface Keyset {
  id: string;
  unit: string;
  active: boolean;
  inputFeePpk: number;
  finalExpiry: number | null;
  derivationIndex: number;
  /** amount → 32-byte private key */
  privateKeys: Map<number, Uint8Array>;
  /** amount → 33-byte compressed public key */
  publicKeys: Map<number, Uint8Array>;
}

/** Reads the master secret, creating it (0600) on first start. */
export function loadOrCreateMasterSecret(dir: string): Uint8Array {
  const path = join(dir, MASTER_FILE);
  if (!existsSync(path)) {
    writeFileSync(path, `${toHex(randomBytes(32))}\n`, { mode: 0o600, flag: "wx" });
  }
  chmodSync(path, 0o600);
  const hex = readFileSync(path, "utf8").trim();
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`${path} is not a 32-byte hex secret`);
  return fromHex(hex);
}

function deriveKeys(
  master: Uint8Array,
  unit: string,
  index: number,
  inputFeePpk: number,
  finalExpiry: number | null,
) {
  const seed = createHmac("sha256", master).update(`owlrun-mint/keyset/${unit}/${index}`).digest();
  return createNewMintKeys(AMOUNT_BITS, seed, {
    unit,
    input_fee_ppk: inputFeePpk,
    expiry: finalExpiry ?? undefined,
  });
}

export class KeysetManager {
  private readonly cache = new Map<string, Keyset>();

  constructor(
    private readonly store: MintStore,
    private readonly master: Uint8Array,
  ) {}

  /** Makes sure the unit has an active keyset (creating keyset 0 on first start). */
  ensureActive(unit: string, inputFeePpk: number): Keyset {
    const active = this.active(unit);
    if (active) return active;
    return this.rotate(unit, inputFeePpk);
  }

  /** Creates the next keyset of the unit and makes it the active one; older ones stay valid for redemption. */
  rotate(unit: string, inputFeePpk: number): Keyset {
    const rows = this.store.listKeysets().filter((k) => k.unit === unit);
    const index = rows.reduce((max, k) => Math.max(max, k.derivation_index + 1), 0);
    const keys = deriveKeys(this.master, unit, index, inputFeePpk, null);
    this.store.addActiveKeyset({
      id: keys.keysetId,
      unit,
      derivation_index: index,
      input_fee_ppk: inputFeePpk,
      final_expiry: null,
    });
    this.cache.clear();
    return this.get(keys.keysetId)!;
  }

  /** All keysets, re-read from the store so a rotation by another process shows up. */
  all(): Keyset[] {
    return this.store.listKeysets().map((row) => this.load(row));
  }

  active(unit: string): Keyset | undefined {
    return this.all().find((k) => k.active && k.unit === unit);
  }

  get(id: string): Keyset | undefined {
    return this.snapshot().get(id);
  }

  /** id → keyset, read once: verification of a request uses one consistent view. */
  snapshot(): Map<string, Keyset> {
    return new Map(this.all().map((k) => [k.id, k]));
  }

  private load(row: KeysetRow): Keyset {
    const cached = this.cache.get(row.id);
    if (cached) {
      cached.active = row.active === 1;
      return cached;
    }
    const keys = deriveKeys(this.master, row.unit, row.derivation_index, row.input_fee_ppk, row.final_expiry);
    if (keys.keysetId !== row.id) {
      // The secret file does not belong to this database: refuse rather than sign with wrong keys.
      throw new Error(`keyset ${row.id} does not derive from this master secret (got ${keys.keysetId})`);
    }
    const keyset: Keyset = {
      id: row.id,
      unit: row.unit,
      active: row.active === 1,
      inputFeePpk: row.input_fee_ppk,
      finalExpiry: row.final_expiry,
      derivationIndex: row.derivation_index,
      privateKeys: new Map(Object.entries(keys.privKeys).map(([a, k]) => [Number(a), k])),
      publicKeys: new Map(Object.entries(keys.pubKeys).map(([a, k]) => [Number(a), k])),
    };
    this.cache.set(row.id, keyset);
    return keyset;
  }
}
