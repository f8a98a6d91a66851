import { createFakeLightning, type FakeLightningOptions } from "./fake.js";
import { createPhoenixdLightning, type PhoenixdOptions } from "./phoenixd.js";
import type { LightningBackend } from "./types.js";

export * from "./fake.js";
export * from "./phoenixd.js";
export type * from "./types.js";

export function createLightningBackend(kind: "fake", opts?: FakeLightningOptions): LightningBackend;
export function createLightningBackend(kind: "phoenixd", opts: PhoenixdOptions): LightningBackend;
export function createLightningBackend(
  kind: "fake" | "phoenixd",
  opts?: FakeLightningOptions | PhoenixdOptions,
): LightningBackend {
  return kind === "phoenixd"
    ? createPhoenixdLightning(opts as PhoenixdOptions)
    : createFakeLightning(opts as FakeLightningOptions);
}
