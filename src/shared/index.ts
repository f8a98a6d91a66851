export * from "./config.js";
export * from "./errors.js";
export * from "./lifecycle.js";
export * from "./ports.js";
export * from "./log.js";
export * from "./version.js";
export * from "./prompt-size.js";
export * from "./inject.js";
export { type Isolation, type Migration, type PgClient, PgDatabase, type Queryable } from "./postgres.js";
