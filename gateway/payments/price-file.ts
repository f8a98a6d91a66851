/**
 * The operator's price file (`--prices prices.json`): USD per 1M input and output tokens for each
 * model, and a default for models it does not list. Read at start (a bad file stops the start)
 * and again whenever it changes; a bad edit is logged and the prices in force stay.
 *
 *   { "default": { "per_m_input_usd": 0.02, "per_m_output_usd": 0.06 },
 *     "models": { "llama3.1:8b": { "per_m_input_usd": 0.05, "per_m_output_usd": 0.1 } } }
 */
import { readFileSync, unwatchFile, watchFile } from "node:fs";
import * as z from "zod";
import { ConfigError, type Logger } from "../../src/shared/index.js";
import { DEFAULT_RATE, PriceTable } from "./pricing.js";

const Usd = z.number().finite().nonnegative().max(1_000_000);
export const ModelRateSchema = z.object({ per_m_input_usd: Usd, per_m_output_usd: Usd });
export const PriceFileSchema = z.object({
  default: ModelRateSchema.optional(),
  models: z.record(z.string().min(1).max(200), ModelRateSchema).default({}),
});
export type PriceFile = z.infer<typeof PriceFileSchema>;

/** A start-up error (exit 2 from the CLI), like any bad flag. */
export class PriceFileError extends ConfigError {}

export function readPriceFile(path: string): PriceFile {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new PriceFileError(`price file ${path}: ${(err as Error).message}`);
  }
  const parsed = PriceFileSchema.safeParse(raw);
  if (!parsed.success)
    throw new PriceFileError(`price file ${path}: ${z.prettifyError(parsed.error).replace(/\n/g, " ")}`);
  return parsed.data;
}

/** A price table kept in step with `path`; `close()` stops watching. */
export function watchedPriceTable(
  path: string,
  log: Logger,
  pollMs = 1_000,
): { prices: PriceTable; reload(): boolean; close(): void } {
  const first = readPriceFile(path);
  const prices = new PriceTable(first.models, first.default ?? DEFAULT_RATE);
  const reload = () => {
    try {
      const next = readPriceFile(path);
      prices.replace(next.models, next.default ?? DEFAULT_RATE);
      log.info("prices reloaded", { path, models: Object.keys(next.models).length });
      return true;
    } catch (err) {
      log.warn("price file not reloaded; the prices in force stay", { err: (err as Error).message });
      return false;
    }
  };
  // Polling the file's stat survives editors that replace the file rather than write it.
  const onChange = (cur: { mtimeMs: number; size: number }, prev: { mtimeMs: number; size: number }) => {
    if (cur.mtimeMs !== prev.mtimeMs || cur.size !== prev.size) reload();
  };
  watchFile(path, { interval: pollMs, persistent: false }, onChange);
  return { prices, reload, close: () => unwatchFile(path, onChange) };
}
