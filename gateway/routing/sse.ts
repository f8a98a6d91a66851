/**
 * Reassembles the Server-Sent Events text a node relays from Ollama's OpenAI-compatible endpoint.
 * `proxy_chunk` frames cut the stream anywhere (mid-line, mid-`data:`, between `\r` and `\n`), so
 * text is buffered until a line ends. OpenAI-style streams put one JSON document per `data:` line,
 * so each `data:` line is one payload (a node that forgets the blank line between events still
 * works); comments (`:`), blank lines and other fields are skipped.
 */

/** An unterminated line longer than this is not SSE from Ollama: the node is sending garbage. */
export const MAX_SSE_LINE = 1024 * 1024;

export class SseOverflowError extends Error {
  constructor() {
    super(`an SSE line exceeded ${MAX_SSE_LINE} bytes`);
  }
}

export class SseDecoder {
  private buffer = "";
  /** a `\r` ended the previous piece: a `\n` opening the next one belongs to the same line end */
  private pendingCr = false;

  /** Feeds raw text; returns the payload of every `data:` line it completed. */
  push(text: string): string[] {
    if (this.pendingCr && text.startsWith("\n")) text = text.slice(1);
    this.pendingCr = false;
    this.buffer += text;
    const out: string[] = [];
    let start = 0;
    for (;;) {
      const cr = this.buffer.indexOf("\r", start);
      const lf = this.buffer.indexOf("\n", start);
      const end = cr < 0 ? lf : lf < 0 ? cr : Math.min(cr, lf);
      if (end < 0) break;
      this.line(this.buffer.slice(start, end), out);
      start = end + 1;
      if (this.buffer[end] === "\r") {
        if (end + 1 === this.buffer.length) this.pendingCr = true;
        else if (this.buffer[end + 1] === "\n") start++;
      }
    }
    this.buffer = this.buffer.slice(start);
    if (this.buffer.length > MAX_SSE_LINE) throw new SseOverflowError();
    return out;
  }

  /** The stream ended: a last line without its line break still counts. */
  end(): string[] {
    const out: string[] = [];
    if (this.buffer !== "") this.line(this.buffer, out);
    this.buffer = "";
    return out;
  }

  private line(line: string, out: string[]): void {
    if (!line.startsWith("data:")) return;
    const value = line.slice(5);
    out.push(value.startsWith(" ") ? value.slice(1) : value);
  }
}
