/**
 * Where benchmarks keep their numbers: one file per run date, `bench/results/<date>.json`, each
 * benchmark writing its own section so `npm run bench` leaves one merged record per day.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";

/** Merges `data` into today's results file under `section`; returns the file's path. */
export function saveSection(section: string, data: Record<string, unknown>): string {
  const date = new Date().toISOString();
  const dir = new URL("./results/", import.meta.url);
  mkdirSync(dir, { recursive: true });
  const file = new URL(`./${date.slice(0, 10)}.json`, dir);
  const all = existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>) : {};
  all[section] = { date, node: process.version, ...data };
  writeFileSync(file, `${JSON.stringify(all, null, 2)}\n`);
  console.log(`written ${file.pathname} (${section})`);
  return file.pathname;
}

/** The p-th percentile of a sample (nearest rank). */
export function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}
