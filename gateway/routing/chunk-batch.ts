/**
 * The `proxy_chunk` text of one job, held for the rest of the current socket read. `ws` emits every
 * frame of one read synchronously, so a node that cuts a token into nine frames (an Owlrun agent
 * sends ~23 characters a frame) costs nine SSE scans, idle-clock stamps and attempt turns per
 * token; held here, they cost one. The batch is handed over in a microtask, which runs when the
 * read's callback returns (before the next read, timer or close event), so nothing waits longer
 * than the read it came in; the owner flushes first whenever any other frame arrives (another
 * job's chunk, accept/reject/done, a heartbeat, an invalid frame), so every job sees exactly the
 * text and the order of events it saw frame by frame.
 */
import type { NodeJob } from "./remote.js";

export class ChunkBatch {
  private job?: NodeJob;
  private data = "";
  private queued = false;
  private readonly flushQueued = () => {
    this.queued = false;
    this.flush();
  };

  /** Holds `data` for `job`; a chunk of another job first hands over what was held. */
  add(job: NodeJob, data: string): void {
    if (this.job !== job) {
      this.flush();
      this.job = job;
    }
    this.data += data;
    if (!this.queued) {
      this.queued = true;
      queueMicrotask(this.flushQueued);
    }
  }

  /** Hands what is held to its job (in one `onChunk`). */
  flush(): void {
    const job = this.job;
    if (!job) return;
    const data = this.data;
    this.job = undefined;
    this.data = "";
    job.onChunk(data);
  }
}
