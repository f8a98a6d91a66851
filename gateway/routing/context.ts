/** What the parts of routing (node sockets, dispatcher, the door in index.ts) share. */
import type { Logger } from "../../src/shared/index.js";
import type { Attempt } from "./attempt.js";
import type { Registry } from "./registry.js";
import type { ClusterLink } from "./remote.js";
import type { RoutingStore } from "./store.js";

export interface RoutingContext {
  log: Logger;
  store: RoutingStore;
  registry: Registry;
  /** live attempts by wire job id (body pulls and ownership checks) */
  attempts: Map<string, Attempt>;
  /** set by close() and joinCluster(); read at each use */
  state: {
    closed: boolean;
    /** other gateway processes on the same database; undefined: this process is alone */
    cluster?: ClusterLink;
  };
}
