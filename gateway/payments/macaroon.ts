/**
 * Macaroons in the V2 binary format of libmacaroons (what L402 tooling such as aperture, lnd and
 * js-macaroon read and write), first-party caveats only. Our own small codec: `macaroon@3.0.4`'s
 * buffer doubled on every append (a 3.3 GB allocation per challenge, a RangeError at the fourth
 * caveat). Signature chain as in the macaroon paper: sig₀ = HMAC(HMAC("macaroons-key-generator",
 * rootKey), identifier), sigᵢ = HMAC(sigᵢ₋₁, caveatᵢ).
 *
 * Wire: 0x02, [1 location], 2 identifier, EOS, { [1 location], 2 caveat id, [4 vid], EOS }*, EOS,
 * 6 signature; each field is type byte, uvarint length, bytes.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

const VERSION = 2;
const EOS = 0;
const LOCATION = 1;
const IDENTIFIER = 2;
const VID = 4;
const SIGNATURE = 6;
/** Far above any macaroon we issue: a credential header is not a place for megabytes. */
export const MAX_MACAROON_BYTES = 8192;

export class MacaroonError extends Error {}

export interface Macaroon {
  location?: string;
  identifier: Uint8Array;
  caveats: string[];
  signature: Uint8Array;
}

const hmac = (key: Uint8Array, data: Uint8Array | string) => createHmac("sha256", key).update(data).digest();

function signatureOf(rootKey: Uint8Array, identifier: Uint8Array, caveats: string[]): Buffer {
  let sig = hmac(hmac(Buffer.from("macaroons-key-generator"), rootKey), identifier);
  for (const c of caveats) sig = hmac(sig, Buffer.from(c, "utf8"));
  return sig;
}

/** A macaroon for `identifier` with first-party `caveats`, signed with `rootKey`. */
export function mintMacaroon(p: {
  rootKey: Uint8Array;
  identifier: Uint8Array;
  location?: string;
  caveats: string[];
}): Macaroon {
  return {
    location: p.location,
    identifier: p.identifier,
    caveats: [...p.caveats],
    signature: signatureOf(p.rootKey, p.identifier, p.caveats),
  };
}

function uvarint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

/** The V2 binary encoding: exactly as many bytes as the macaroon needs. */
export function encodeMacaroon(m: Macaroon): Buffer {
  const parts: Uint8Array[] = [Uint8Array.of(VERSION)];
  const field = (type: number, data: Uint8Array) =>
    parts.push(Uint8Array.of(type, ...uvarint(data.length)), data);
  if (m.location) field(LOCATION, Buffer.from(m.location, "utf8"));
  field(IDENTIFIER, m.identifier);
  parts.push(Uint8Array.of(EOS));
  for (const c of m.caveats) {
    field(IDENTIFIER, Buffer.from(c, "utf8"));
    parts.push(Uint8Array.of(EOS));
  }
  parts.push(Uint8Array.of(EOS));
  field(SIGNATURE, m.signature);
  return Buffer.concat(parts);
}

/** URL-safe base64 without padding, as js-macaroon writes it. */
export const macaroonToBase64 = (m: Macaroon) => encodeMacaroon(m).toString("base64url");

class Reader {
  private at = 0;
  constructor(private readonly buf: Buffer) {}
  get done() {
    return this.at >= this.buf.length;
  }
  peek(): number | undefined {
    return this.buf[this.at];
  }
  byte(): number {
    if (this.at >= this.buf.length) throw new MacaroonError("truncated macaroon");
    return this.buf[this.at++]!;
  }
  uvarint(): number {
    let n = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const b = this.byte();
      n += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return n;
    }
    throw new MacaroonError("bad length in macaroon");
  }
  field(type: number): Buffer {
    const got = this.byte();
    if (got !== type) throw new MacaroonError(`unexpected field ${got}, want ${type}`);
    if (type === EOS) return Buffer.alloc(0);
    const len = this.uvarint();
    if (this.at + len > this.buf.length) throw new MacaroonError("truncated macaroon");
    return this.buf.subarray(this.at, (this.at += len));
  }
  optional(type: number): Buffer | undefined {
    return this.peek() === type ? this.field(type) : undefined;
  }
}

/** Reads a V2 macaroon from base64 (standard or URL-safe, padded or not). Throws MacaroonError. */
export function decodeMacaroon(text: string): Macaroon {
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(text)) throw new MacaroonError("macaroon is not base64");
  const buf = Buffer.from(text.replace(/-/g, "+").replace(/_/g, "/"), "base64");
  if (buf.length > MAX_MACAROON_BYTES) throw new MacaroonError("macaroon too large");
  const r = new Reader(buf);
  if (r.byte() !== VERSION) throw new MacaroonError("only version 2 macaroons are supported");
  const location = r.optional(LOCATION)?.toString("utf8");
  const identifier = r.field(IDENTIFIER);
  r.field(EOS);
  const caveats: string[] = [];
  while (r.optional(EOS) === undefined) {
    r.optional(LOCATION);
    const id = r.field(IDENTIFIER);
    if (r.optional(VID) !== undefined) throw new MacaroonError("third-party caveats are not accepted");
    r.field(EOS);
    caveats.push(id.toString("utf8"));
  }
  const signature = r.field(SIGNATURE);
  if (!r.done) throw new MacaroonError("extra data after the macaroon");
  return { location, identifier, caveats, signature };
}

/**
 * Checks the signature chain against `rootKey`, then each caveat with `check` (null = satisfied,
 * else the reason). Throws MacaroonError with the first failure.
 */
export function verifyMacaroon(
  m: Macaroon,
  rootKey: Uint8Array,
  check: (caveat: string) => string | null,
): void {
  const want = signatureOf(rootKey, m.identifier, m.caveats);
  if (m.signature.length !== want.length || !timingSafeEqual(m.signature, want)) {
    throw new MacaroonError("signature mismatch");
  }
  for (const c of m.caveats) {
    const why = check(c);
    if (why !== null) throw new MacaroonError(`caveat "${c}" not satisfied: ${why}`);
  }
}
