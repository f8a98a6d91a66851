/**
 * Where a V8 CPU profile's time went: self time by function and by source file, as a share of the
 * samples (idle and GC shown as V8 names them).
 *
 *   tsx bench/profile-summary.ts <file.cpuprofile> [top=25]
 */
import { readFileSync } from "node:fs";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

const [file, topArg] = process.argv.slice(2);
const profile = JSON.parse(readFileSync(file!, "utf8")) as Profile;
const top = Number(topArg ?? 25);
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map<number, number>();
profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const total = [...self.values()].reduce((a, b) => a + b, 0);
const idle = [...self].filter(([id]) => byId.get(id)!.callFrame.functionName === "(idle)");
const idleUs = idle.reduce((a, [, t]) => a + t, 0);

const shorten = (url: string) => url.replace(/^file:\/\/.*?\/(node_modules|gateway|src|bench|test)\//, "$1/");
const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);
const fns = new Map<string, number>();
const files = new Map<string, number>();
for (const [id, t] of self) {
  const f = byId.get(id)!.callFrame;
  if (f.functionName === "(idle)") continue;
  add(fns, `${f.functionName || "(anonymous)"} ${shorten(f.url)}:${f.lineNumber + 1}`, t);
  add(files, f.url ? shorten(f.url).replace(/:\d+$/, "") : f.functionName, t);
}
const busy = total - idleUs;
const show = (title: string, m: Map<string, number>) => {
  console.log(`\n${title} (share of busy time)`);
  for (const [k, t] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(
      `${((100 * t) / busy).toFixed(1).padStart(5)} %  ${(t / 1000).toFixed(0).padStart(6)} ms  ${k}`,
    );
  }
};
console.log(`${file}: ${(total / 1000).toFixed(0)} ms sampled, ${(busy / 1000).toFixed(0)} ms busy`);
show("self time by function", fns);
show("self time by file", files);
