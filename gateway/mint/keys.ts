/**
 * Keysets derived from one master secret: keyset n of a unit uses the BIP32 seed
 * HMAC-SHA256(master, "owlrun-mint/keyset/<unit>/<n>"), so only the secret file needs a backup.
 * Old keysets stay loaded (inactive) so their proofs can still be redeemed.
 */
import { createHmac, randomBytes } from "node:crypto";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createNewMintKeys } from "@cashu/cashu-ts";
import { fromHex, toHex } from "./crypto.js";
import type { MintStorage } from "./storage.js";
import type { KeysetRow } from "./store.js";

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
  try {
    writeFileSync(path, `${toHex(randomBytes(32))}\n`, { mode: 0o600, flag: "wx" });
  } catch (err) {
    // Already there (or made this instant by another process on the same dir): read that one.
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  }
  chmodSync(path, 0o600);
  const hex = readFileSync(path, "utf8").trim();
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`${path} is not a 32-byte hex secret`);
  return fromHex(hex);
}

/**
 * What processes sharing one database compare: HMAC(master, label), which reveals nothing of the
 * secret. The secret itself never goes into the database (its backups and replicas would then
 * hold the signing keys); every process must be given the same secret file.
 */
export function masterFingerprint(master: Uint8Array): string {
  return createHmac("sha256", master).update("owlrun-mint/fingerprint").digest("hex");
}

export class MasterSecretMismatchError extends Error {
  constructor() {
    super(
      "this mint's master-secret file differs from the one the shared database was started with; " +
        "copy <data>/mint/master-secret from the first mint process (processes sharing a database must sign with the same keys)",
    );
    this.name = "MasterSecretMismatchError";
  }
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

  private constructor(
    private readonly store: MintStorage,
    private readonly master: Uint8Array,
  ) {}

  /**
   * Binds the secret to the store: the first process records its fingerprint, a process with a
   * different secret is refused before it could add (and sign with) a keyset of its own.
   */
  static async open(store: MintStorage, master: Uint8Array): Promise<KeysetManager> {
    const mine = masterFingerprint(master);
    if ((await store.claimMasterFingerprint(mine)) !== mine) throw new MasterSecretMismatchError();
    return new KeysetManager(store, master);
  }

  /** Makes sure the unit has an active keyset (creating keyset 0 on first start). */
  async ensureActive(unit: string, inputFeePpk: number): Promise<Keyset> {
    const active = await this.active(unit);
    if (active) return active;
    await this.store.addNextKeyset(unit, inputFeePpk, (i) => this.idOf(unit, i, inputFeePpk), true);
    return (await this.active(unit))!;
  }

  /** Creates the next keyset of the unit and makes it the active one; older ones stay valid for redemption. */
  async rotate(unit: string, inputFeePpk: number): Promise<Keyset> {
    await this.store.addNextKeyset(unit, inputFeePpk, (i) => this.idOf(unit, i, inputFeePpk), false);
    this.cache.clear();
    return (await this.active(unit))!;
  }

  private idOf(unit: string, index: number, inputFeePpk: number): string {
    return deriveKeys(this.master, unit, index, inputFeePpk, null).keysetId;
  }

  /** All keysets, re-read from the store so a rotation by another process shows up. */
  async all(): Promise<Keyset[]> {
    return (await this.store.listKeysets()).map((row) => this.load(row));
  }

  async active(unit: string): Promise<Keyset | undefined> {
    return (await this.all()).find((k) => k.active && k.unit === unit);
  }

  async get(id: string): Promise<Keyset | undefined> {
    return (await this.snapshot()).get(id);
  }

  /** id → keyset, read once: verification of a request uses one consistent view. */
  async snapshot(): Promise<Map<string, Keyset>> {
    return new Map((await this.all()).map((k) => [k.id, k]));
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
