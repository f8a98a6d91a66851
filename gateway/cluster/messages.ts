/**
 * What gateway processes tell each other over the bus. The buyer's process runs the Attempt (it
 * counts, enforces max_tokens and bills); the holder of the node's socket only relays frames.
 */
import type { GatewayMessage } from "../routing/index.js";

export type BusMessage =
  // buyer's process → holder
  /** offer job `wire` to `node` (its body is already in cluster_jobs); frames go back to `from` */
  | { t: "offer"; from: string; node: string; wire: string; msg: GatewayMessage }
  /** pass a frame to the node (cancel, job_complete); a cancel also ends the relay */
  | { t: "send"; node: string; msg: GatewayMessage }
  /** the buyer's attempt ended: stop relaying, ignore the node's late frames */
  | { t: "end"; node: string; wire: string }
  // holder → buyer's process: the node's frames for one job
  | { t: "accept"; wire: string }
  | { t: "reject"; wire: string; reason: string }
  | { t: "chunk"; wire: string; data: string }
  | { t: "done"; wire: string; error?: string | null }
  /** the node's socket went away (or was never there) */
  | { t: "gone"; wire: string; why: string }
  // bus internal
  | { t: "spill"; id: string };
