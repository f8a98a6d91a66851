/**
 * The time line and CPU split of bench/streaming.ts (BENCH_TIMELINE=1): marks the gateway and the
 * provider write to stderr (`timeline <event> <epoch ms>`, src/shared/timeline.ts) are matched to
 * the request whose send…end window holds them (the bench sends one request at a time), and CPU
 * comes from /proc per process and per thread name (llama.cpp's work runs on libuv worker threads,
 * the JS on the main thread).
 */
import { readdirSync, readFileSync } from "node:fs";
import { pct } from "./results.js";

const TICK_MS = 10; // USER_HZ is 100 on Linux

/** CPU ms of one process, in total and per thread name. */
export class CpuSample {
  constructor(
    readonly totalMs: number,
    readonly byThread: Map<string, number>,
  ) {}

  minus(before?: CpuSample): CpuSample {
    if (!before) return this;
    const threads = new Map<string, number>();
    for (const [name, ms] of this.byThread) threads.set(name, ms - (before.byThread.get(name) ?? 0));
    return new CpuSample(this.totalMs - before.totalMs, threads);
  }
}

const ticks = (stat: string) => {
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * TICK_MS; // utime, stime
};

export function cpuOf(pid: number | undefined): CpuSample | undefined {
  if (!pid) return undefined;
  try {
    const byThread = new Map<string, number>();
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      // Worker threads inherit the name "node": the main (JS) thread is the one whose id is the pid.
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const name = tid === String(pid) ? "main (JS)" : `${comm} tid ${tid}`;
      byThread.set(name, (byThread.get(name) ?? 0) + ticks(stat));
    }
    return new CpuSample(ticks(readFileSync(`/proc/${pid}/stat`, "utf8")), byThread);
  } catch {
    return undefined; // not Linux
  }
}

interface TimedRun {
  sentAt?: number;
  endedAt?: number;
  marks?: Record<string, number>;
}

const ORDER = [
  ["gw.arrive", "gateway: request handler starts (body parsed)"],
  ["gw.paid", "gateway: payment held in the ledger"],
  ["gw.offer", "gateway: job offer sent"],
  ["p.offer", "provider: offer received"],
  ["gw.accept", "gateway: accept received"],
  ["gw.pulled", "gateway: body pull answered"],
  ["p.body", "provider: body received"],
  ["p.backend", "provider: backend call starts"],
  ["p.token", "provider: backend's first token"],
  ["p.frame", "provider: first content frame sent"],
  ["gw.first", "gateway: first content parsed"],
  ["c.headers", "client: response headers"],
  ["c.token", "client: first token"],
] as const;

/** p50 of each step since the client sent the request, and the step from the one before. */
export function timelineRows(runs: TimedRun[], stderr: string, directFirstTokenMs: number) {
  const marks = [...stderr.matchAll(/^timeline (\S+) (\d+\.\d+)$/gm)].map((m) => ({
    event: m[1]!,
    at: Number(m[2]),
  }));
  const since = new Map<string, number[]>();
  for (const run of runs) {
    if (run.sentAt === undefined || run.endedAt === undefined) continue;
    const own: Record<string, number> = { ...run.marks };
    for (const m of marks) if (m.at >= run.sentAt && m.at <= run.endedAt) own[m.event] ??= m.at;
    for (const [event, at] of Object.entries(own)) {
      since.set(event, [...(since.get(event) ?? []), at - run.sentAt]);
    }
  }
  let before = 0;
  const rows = ORDER.filter(([event]) => since.has(event)).map(([event, step]) => {
    const ms = +pct(since.get(event)!, 50).toFixed(2);
    const row = { step: step as string, p50_ms: ms, since_previous_ms: +(ms - before).toFixed(2) };
    before = ms;
    return row;
  });
  rows.push({
    step: "direct: backend's first token (same model)",
    p50_ms: directFirstTokenMs,
    since_previous_ms: NaN,
  });
  return rows;
}

/** CPU per process and the heaviest threads, with µs per token. */
export function cpuRows(
  through: { gateway?: CpuSample; provider?: CpuSample },
  clientMs: number,
  directMs: number,
  tokens: number,
  directTokens: number,
) {
  const row = (what: string, ms: number, n: number) => ({
    what,
    cpu_ms: Math.round(ms),
    us_per_token: +((ms * 1000) / n).toFixed(1),
  });
  const rows = [];
  for (const [name, sample] of [
    ["gateway", through.gateway],
    ["provider", through.provider],
  ] as const) {
    if (!sample) continue;
    rows.push(row(`${name} process`, sample.totalMs, tokens));
    const threads = [...sample.byThread].filter(([, ms]) => ms > 0).sort((a, b) => b[1] - a[1]);
    for (const [thread, ms] of threads.slice(0, 4)) rows.push(row(`  ${name} thread ${thread}`, ms, tokens));
  }
  rows.push(row("bench client (fetch + SSE parse)", clientMs, tokens));
  rows.push(row("direct: bench process (backend in-process)", directMs, directTokens));
  return rows;
}
