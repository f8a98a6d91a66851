/**
 * What the agent gets when it names no model, and how an answer of bytes that are not UTF-8 reads:
 * the gateway's default model (else most nodes, then dearest; never the first by name), and runs
 * of U+FFFD collapsed into one marker in the MCP chat result and the browser page alike.
 */
import { describe, expect, it } from "vitest";
import type { GatewayModel } from "../../src/client/index.js";
import { pickDefaultModel, tidyInvalidUtf8 } from "../../tools/index.js";
import { tidyInvalidUtf8 as tidyInPage } from "../../web/markdown.js";

const model = (id: string, providers: number, outUsd: number): GatewayModel => ({
  id,
  providers,
  pricing: { per_m_input_usd: 0.1, per_m_output_usd: outUsd },
});

describe("default model", () => {
  const random = model("owlrun-test-random:tiny", 1, 0.2);
  const scripted = model("owlrun-test-scripted:tiny", 1, 0.2);

  it("is the gateway's default while it is online", () => {
    expect(pickDefaultModel([random, scripted], scripted.id)).toBe(scripted);
  });

  it("without one (or when it went offline): most nodes, then the dearest, never just the first by name", () => {
    const big = model("zz-big:70b", 1, 0.9);
    const popular = model("zz-popular:7b", 3, 0.2);
    expect(pickDefaultModel([random, big], null)).toBe(big);
    expect(pickDefaultModel([random, big, popular], "gone:1b")).toBe(popular);
    expect(pickDefaultModel([], null)).toBeUndefined();
  });
});

describe("answers that are not UTF-8", () => {
  it("collapse each run of replacement characters into one marker, in the tool and the page", () => {
    const soup = "ok \uFFFD\uFFFD \uFFFD\uFFFD\uFFFD then \uFFFD.";
    for (const tidy of [tidyInvalidUtf8, tidyInPage]) {
      expect(tidy(soup)).toBe("ok [invalid UTF-8] then [invalid UTF-8].");
      expect(tidy("plain text, ünïcode ✓")).toBe("plain text, ünïcode ✓");
    }
  });
});
