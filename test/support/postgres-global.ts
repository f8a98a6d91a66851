/**
 * vitest globalSetup: one PostgreSQL cluster for the whole run (starting one costs seconds);
 * each test file makes its own database on it through `testDatabase()` in ./postgres.ts.
 */
import type { TestProject } from "vitest/node";
import { startPostgres } from "./postgres-server.js";

declare module "vitest" {
  export interface ProvidedContext {
    postgresAdminUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await startPostgres();
  project.provide("postgresAdminUrl", server.adminUrl);
  return () => server.stop();
}
