/**
 * parseNodeFrame reads the usual proxy_chunk envelope by hand (protocol.ts `chunkEnvelope`); it
 * must answer exactly what JSON.parse + the schema answer (`parseNodeFrameBySchema`) for every
 * frame: well-formed ones with any id and data, and hostile ones cut, spliced and rearranged.
 */
import { describe, expect, it } from "vitest";
import { MAX_FRAME_BYTES } from "../../gateway/routing/index.js";
import { parseNodeFrame, parseNodeFrameBySchema } from "../../gateway/routing/protocol.js";

/** Mulberry32: seeded, so a failure replays. */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PIECES = [
  "a",
  "Z",
  "0",
  "-",
  " ",
  '"',
  "\\",
  "\n",
  "\r",
  "\t",
  "\u0000",
  "\u001f",
  "é",
  "€",
  "😀",
  "\ud800",
  "\u2028",
  "}",
  "{",
  ",",
  ":",
  "data",
  "job_id",
  "\\u0041",
  '\\"',
];

describe("parseNodeFrame's proxy_chunk envelope", () => {
  it("answers exactly what JSON.parse + the schema answer, for 20,000 well-formed and hostile frames", () => {
    const next = rng(2121);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)]!;
    const str = (max: number) =>
      Array.from({ length: Math.floor(next() * max) }, () => pick(PIECES)).join("");
    const mutate = (s: string): string => {
      const i = Math.floor(next() * (s.length + 1));
      switch (Math.floor(next() * 6)) {
        case 0:
          return s.slice(0, i) + s.slice(i + 1 + Math.floor(next() * 4)); // delete
        case 1:
          return s.slice(0, i) + pick(PIECES) + s.slice(i); // insert
        case 2:
          return s.slice(0, i); // truncate
        case 3:
          return s + pick([" ", "\n", "x", "}", ',"data":"x"}']); // trailing
        case 4:
          return s.replace(
            '"data":',
            pick(['"data" :', '"extra":1,"data":', '"data":"x","data":', '"Data":']),
          );
        default:
          return s.replace('"job_id":', pick(['"job_id" :', '"job_id":"x","job_id":', '"jobid":']));
      }
    };
    let fast = 0;
    for (let n = 0; n < 20_000; n++) {
      const id = next() < 0.1 ? str(200) : `job-${Math.floor(next() * 1e9)}${next() < 0.2 ? str(4) : ""}`;
      const data = next() < 0.01 ? "x".repeat(MAX_FRAME_BYTES + Math.floor(next() * 3) - 1) : str(40);
      let raw =
        next() < 0.1
          ? JSON.stringify({ job_id: id, type: "proxy_chunk", data }) // another key order
          : JSON.stringify({ type: "proxy_chunk", job_id: id, data });
      if (next() < 0.1)
        raw = raw.replace(`"${"proxy_chunk"}"`, pick(['"proxy_done"', '"accept"', '"proxy_chunk "']));
      const mutations = next() < 0.5 ? 0 : 1 + Math.floor(next() * 3);
      for (let m = 0; m < mutations; m++) raw = mutate(raw);
      const expected = parseNodeFrameBySchema(raw);
      expect(parseNodeFrame(raw), raw).toEqual(expected);
      if (expected.kind === "message" && expected.msg.type === "proxy_chunk") fast++;
    }
    expect(fast).toBeGreaterThan(5_000); // the hand path was exercised, not only the fallback
  });
});
