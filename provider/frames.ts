import { MAX_CHUNK_BYTES, splitUtf8 } from "./protocol.js";

/**
 * Coalesces SSE text into `proxy_chunk` frames of at most MAX_CHUNK_BYTES: the first text after a
 * quiet spell of `windowMs` is sent at once (a model slower than the window never waits), later text
 * waits for the window to pass, so a fast stream costs one WebSocket frame (one write on each side)
 * per window instead of one per token. Text is never split inside a character or reordered.
 * Text pushed `now` (a stream's first token, which the buyer waits for) goes out at once with what
 * is pending before it.
 */
export class FrameBatcher {
  private pending = "";
  private pendingBytes = 0;
  private lastSent = -Infinity;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly sendFrame: (data: string) => void,
    private readonly windowMs: number,
  ) {}

  push(text: string, now = false): void {
    const bytes = Buffer.byteLength(text, "utf8");
    if (this.pendingBytes + bytes > MAX_CHUNK_BYTES) this.flush();
    if (bytes > MAX_CHUNK_BYTES) {
      for (const data of splitUtf8(text)) this.sendFrame(data);
      this.lastSent = performance.now();
      return;
    }
    this.pending += text;
    this.pendingBytes += bytes;
    if (now) return this.flush();
    if (this.timer) return;
    const wait = this.lastSent + this.windowMs - performance.now();
    if (wait <= 0) this.flush();
    else this.timer = setTimeout(() => this.flush(), wait);
  }

  /** Sends what is pending now (before proxy_done, or when the job stops). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending === "") return;
    const data = this.pending;
    this.pending = "";
    this.pendingBytes = 0;
    this.lastSent = performance.now();
    this.sendFrame(data);
  }
}
