/**
 * The gateway's pool as the wallet sees it: the wallet core's proofs and counters (EcashPool) plus
 * the change tokens the gateway owes, stored by the step that spends their proofs and claimable
 * later by id (GET /v1/cashu/change/:id). SQLite (`GatewayEcashStore`) or PostgreSQL
 * (`PgGatewayPool`, shared by several gateway processes).
 */
import type { Awaitable, EcashPool } from "../../src/shared/ecash/index.js";

export interface StoredChange {
  id: string;
  mint: string;
  amount: number;
  token: string;
}

export interface GatewayPool extends EcashPool {
  /** The stored change token, without marking it fetched. */
  findChange(id: string): Awaitable<{ token: string } | undefined>;
  /** The stored change, marked fetched (retention forgets fetched change later). */
  getChange(id: string): Awaitable<StoredChange | undefined>;
  /** Retention: spent proofs and fetched change older than `beforeMs`; returns rows deleted. */
  compact(beforeMs: number): Awaitable<number>;
  /** Change nobody fetched, made before `beforeMs` and not checked since `checkedBeforeMs`. */
  unfetchedChange(
    beforeMs: number,
    checkedBeforeMs: number,
    limit: number,
  ): Awaitable<{ id: string; mint: string; token: string }[]>;
  /** Retention asked the mint about these change rows at `now`. */
  markChangeChecked(ids: readonly string[], now: number): Awaitable<void>;
  /** Deletes change rows (retention: only rows whose proofs the mint reports all spent). */
  forgetChange(ids: readonly string[]): Awaitable<number>;
  close(): Awaitable<void>;
}
