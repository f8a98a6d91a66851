/**
 * Model aliases: clients that only know their vendor's names (Claude Code asks for `claude-…`) are
 * served by a model the operator maps them to (`--model-alias claude-haiku-4=qwen2.5:0.5b`, a
 * trailing `*` matches a prefix). A `claude-…` name nothing maps falls back to the served model with
 * the most provider nodes (ties: the first by name), so Claude Code works with no configuration.
 */
import { ConfigError } from "../../src/shared/index.js";
import type { ModelOffer } from "../routing/types.js";

export interface ModelAlias {
  alias: string;
  target: string;
}

export class ModelAliases {
  private readonly exact = new Map<string, string>();
  /** prefix patterns (`claude-*`), longest first */
  private readonly prefixes: { prefix: string; target: string }[] = [];

  constructor(readonly entries: readonly ModelAlias[] = []) {
    for (const { alias, target } of entries) {
      if (alias.endsWith("*")) this.prefixes.push({ prefix: alias.slice(0, -1), target });
      else this.exact.set(alias, target);
    }
    this.prefixes.sort((a, b) => b.prefix.length - a.prefix.length);
  }

  /** `name=target` specs (flags, or one comma list from the environment). */
  static parse(specs: readonly string[]): ModelAliases {
    const entries = specs
      .flatMap((s) => s.split(","))
      .map((s) => s.trim())
      .filter(Boolean)
      .map((spec) => {
        const eq = spec.indexOf("=");
        const alias = spec.slice(0, eq).trim();
        const target = spec.slice(eq + 1).trim();
        if (
          eq < 1 ||
          !target ||
          alias.length > 200 ||
          target.length > 200 ||
          alias.slice(0, -1).includes("*")
        )
          throw new ConfigError(`--model-alias "${spec}": use name=model (name may end with *)`);
        return { alias, target };
      });
    return new ModelAliases(entries);
  }

  /** The model a requested name is served by: itself when served, else its alias, else as is. */
  resolve(name: string, offers: readonly ModelOffer[]): string {
    if (offers.some((o) => o.model === name)) return name;
    const exact = this.exact.get(name);
    if (exact) return exact;
    const prefixed = this.prefixes.find((p) => name.startsWith(p.prefix));
    if (prefixed) return prefixed.target;
    if (name.startsWith("claude-")) return defaultModel(offers) ?? name;
    return name;
  }

  /** The aliases whose target is served right now, for GET /v1/models. */
  listed(offers: readonly ModelOffer[]): ModelAlias[] {
    const served = new Set(offers.map((o) => o.model));
    return this.entries.filter((e) => !e.alias.endsWith("*") && served.has(e.target));
  }
}

/** The fallback for unmapped `claude-…` names: the model most nodes serve, then the first by name. */
export function defaultModel(offers: readonly ModelOffer[]): string | undefined {
  return [...offers].sort((a, b) => b.nodes - a.nodes || a.model.localeCompare(b.model))[0]?.model;
}
