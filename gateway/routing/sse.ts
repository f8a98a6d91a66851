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

  /**
   * Feeds raw text; returns the payload of every `data:` line it completed. Only the new text is
   * scanned (the buffer holds one unfinished line, never a line break), so the cost is linear in
   * the bytes relayed however finely a node cuts its frames.
   */
  push(text: string): string[] {
    let start = 0;
    if (this.pendingCr && text.charCodeAt(0) === 10) start = 1;
    this.pendingCr = false;
    const out: string[] = [];
    // Line breaks are found by the engine's string search, not a loop over every character: most
    // frames of a finely cut stream hold none and only append to the buffer.
    let lf = text.indexOf("\n", start);
    let cr = text.indexOf("\r", start);
    while (lf >= 0 || cr >= 0) {
      const i = cr < 0 || (lf >= 0 && lf < cr) ? lf : cr;
      const piece = text.slice(start, i);
      this.line(this.buffer === "" ? piece : this.buffer + piece, out);
      this.buffer = "";
      start = i + 1;
      if (i === cr) {
        if (start === text.length) this.pendingCr = true;
        else if (text.charCodeAt(start) === 10) start++;
      }
      if (lf >= 0 && lf < start) lf = text.indexOf("\n", start);
      if (cr >= 0 && cr < start) cr = text.indexOf("\r", start);
    }
    if (start < text.length) this.buffer += text.slice(start);
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
