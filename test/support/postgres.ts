/** A fresh PostgreSQL database per caller on the run's shared cluster (see postgres-global.ts). */
import { inject } from "vitest";
import { createDatabase } from "./postgres-server.js";

export async function testDatabase(prefix = "t"): Promise<{ url: string; drop(): Promise<void> }> {
  return createDatabase(inject("postgresAdminUrl"), prefix);
}
