import { createFakeLightning, type FakeLightningOptions } from "./fake.js";
import { createPhoenixdLightning, type PhoenixdOptions } from "./phoenixd.js";
import type { LightningBackend } from "./types.js";

export { LightningBackendError } from "./errors.js";
export { createFakeLightning, FAKE_NODE_PUBKEY, type FakeLightningOptions } from "./fake.js";
export { type ClnOptions, createClnLightning } from "./cln.js";
export { createLndLightning, type LndOptions } from "./lnd.js";
export { createPhoenixdLightning, type PhoenixdOptions } from "./phoenixd.js";
export type * from "./types.js";

/** The backend the CLI's `--lightning` flag names. */
export function createLightningBackend(kind: "fake", opts?: FakeLightningOptions): LightningBackend;
export function createLightningBackend(kind: "phoenixd", opts: PhoenixdOptions): LightningBackend;
export function createLightningBackend(
  kind: "fake" | "phoenixd",
  opts?: FakeLightningOptions | PhoenixdOptions,
): LightningBackend {
  if (kind === "phoenixd") return createPhoenixdLightning(opts as PhoenixdOptions);
  return createFakeLightning(opts as FakeLightningOptions | undefined);
}
