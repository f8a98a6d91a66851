/**
 * A minimal GGUF v3 writer (llama.cpp's model file format): typed metadata, F32 tensors, 32-byte
 * alignment. Enough to generate tiny test models here, where no model can be downloaded.
 * Layout: header, metadata KVs, tensor infos (dims innermost first), padding, aligned tensor data.
 */
const ALIGN = 32;

export type MetaValue =
  | { type: "u32"; value: number }
  | { type: "i32"; value: number }
  | { type: "f32"; value: number }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string }
  | { type: "string[]"; value: string[] }
  | { type: "f32[]"; value: number[] }
  | { type: "i32[]"; value: number[] };

export interface Tensor {
  name: string;
  /** innermost first, as GGUF stores them (token_embd = [n_embd, n_vocab]) */
  dims: number[];
  data: Float32Array;
}

const T = { UINT32: 4, INT32: 5, FLOAT32: 6, BOOL: 7, STRING: 8, ARRAY: 9 } as const;

class Out {
  private chunks: Buffer[] = [];
  length = 0;
  push(b: Buffer) {
    this.chunks.push(b);
    this.length += b.length;
  }
  u32(v: number) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.push(b);
  }
  i32(v: number) {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    this.push(b);
  }
  u64(v: number) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  f32(v: number) {
    const b = Buffer.alloc(4);
    b.writeFloatLE(v);
    this.push(b);
  }
  str(s: string) {
    const b = Buffer.from(s, "utf8");
    this.u64(b.length);
    this.push(b);
  }
  pad() {
    const n = (ALIGN - (this.length % ALIGN)) % ALIGN;
    if (n) this.push(Buffer.alloc(n));
  }
  concat() {
    return Buffer.concat(this.chunks);
  }
}

export function writeGguf(meta: Record<string, MetaValue>, tensors: Tensor[]): Buffer {
  const out = new Out();
  out.push(Buffer.from("GGUF", "ascii"));
  out.u32(3);
  out.u64(tensors.length);
  out.u64(Object.keys(meta).length);
  for (const [key, v] of Object.entries(meta)) {
    out.str(key);
    switch (v.type) {
      case "u32":
        out.u32(T.UINT32);
        out.u32(v.value);
        break;
      case "i32":
        out.u32(T.INT32);
        out.i32(v.value);
        break;
      case "f32":
        out.u32(T.FLOAT32);
        out.f32(v.value);
        break;
      case "bool":
        out.u32(T.BOOL);
        out.push(Buffer.from([v.value ? 1 : 0]));
        break;
      case "string":
        out.u32(T.STRING);
        out.str(v.value);
        break;
      case "string[]":
        out.u32(T.ARRAY);
        out.u32(T.STRING);
        out.u64(v.value.length);
        for (const s of v.value) out.str(s);
        break;
      case "f32[]":
        out.u32(T.ARRAY);
        out.u32(T.FLOAT32);
        out.u64(v.value.length);
        for (const x of v.value) out.f32(x);
        break;
      case "i32[]":
        out.u32(T.ARRAY);
        out.u32(T.INT32);
        out.u64(v.value.length);
        for (const x of v.value) out.i32(x);
        break;
    }
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    const expected = t.dims.reduce((a, b) => a * b, 1);
    if (expected !== t.data.length) throw new Error(`${t.name}: ${t.data.length} values for dims ${t.dims}`);
    offsets.push(offset);
    offset += t.data.byteLength;
    offset += (ALIGN - (offset % ALIGN)) % ALIGN;
  }
  tensors.forEach((t, i) => {
    out.str(t.name);
    out.u32(t.dims.length);
    for (const d of t.dims) out.u64(d);
    out.u32(0); // GGML_TYPE_F32
    out.u64(offsets[i]!);
  });
  out.pad();
  for (const t of tensors) {
    out.push(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    out.pad();
  }
  return out.concat();
}
