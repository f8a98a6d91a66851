/**
 * The operator's price file (`--prices`): rates per model and a default, read at start (a bad
 * file stops the start with exit 2), reloaded on change, and a bad edit keeps the prices in force.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readPriceFile, watchedPriceTable } from "../../gateway/payments/price-file.js";
import { silentLogger } from "../../src/shared/index.js";
import { runCli, tempDir } from "../support/cli-process.js";

const file = (content: unknown) => {
  const path = join(tempDir("owlrun-prices-"), "prices.json");
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content));
  return path;
};

describe("price file", () => {
  it("prices listed models at their rate and the rest at the default", () => {
    const w = watchedPriceTable(
      file({
        default: { per_m_input_usd: 1, per_m_output_usd: 2 },
        models: { "a:1b": { per_m_input_usd: 3, per_m_output_usd: 4 } },
      }),
      silentLogger,
    );
    try {
      expect(w.prices.rate("a:1b")).toEqual({ per_m_input_usd: 3, per_m_output_usd: 4 });
      expect(w.prices.rate("other:7b")).toEqual({ per_m_input_usd: 1, per_m_output_usd: 2 });
    } finally {
      w.close();
    }
  });

  it("a bad edit is refused and the prices in force stay; a good one replaces them", () => {
    const path = file({ models: { "a:1b": { per_m_input_usd: 3, per_m_output_usd: 4 } } });
    const w = watchedPriceTable(path, silentLogger);
    try {
      writeFileSync(path, '{"models":{"a:1b":{"per_m_input_usd":-1,"per_m_output_usd":4}}}');
      expect(w.reload()).toBe(false);
      writeFileSync(path, "{ not json");
      expect(w.reload()).toBe(false);
      expect(w.prices.rate("a:1b").per_m_input_usd).toBe(3);
      writeFileSync(
        path,
        JSON.stringify({ models: { "a:1b": { per_m_input_usd: 5, per_m_output_usd: 6 } } }),
      );
      expect(w.reload()).toBe(true);
      expect(w.prices.rate("a:1b").per_m_input_usd).toBe(5);
    } finally {
      w.close();
    }
  });

  it("names what is wrong", () => {
    expect(() => readPriceFile(file({ models: { x: { per_m_input_usd: "cheap" } } }))).toThrow(/price file/);
    expect(() => readPriceFile("/nonexistent/prices.json")).toThrow(/ENOENT/);
  });

  it("owlrun-mcp gateway --prices with a bad file exits 2 with the reason, before listening", async () => {
    const r = await runCli([
      "gateway",
      "--port",
      "0",
      "--data-dir",
      tempDir(),
      "--prices",
      file({ models: { x: { per_m_input_usd: -5, per_m_output_usd: 1 } } }),
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/price file/);
    expect(r.stdout).not.toMatch(/listening/);
  });
});
