import { createFakeLightning, type FakeLightningOptions } from "./fake.js";
import type { LightningBackend } from "./types.js";

export * from "./fake.js";
export type * from "./types.js";

// TEMPORARY until phoenixd.ts lands (being written in parallel).
export function createLightningBackend(
  kind: "fake" | "phoenixd",
  opts: FakeLightningOptions | { url: string; password: string },
): LightningBackend {
  if (kind === "fake") return createFakeLightning(opts as FakeLightningOptions);
  throw new Error("phoenixd backend not built yet");
}
