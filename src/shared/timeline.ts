/**
 * Time-line marks for `BENCH_TIMELINE=1 tsx bench/streaming.ts`: with `OWLRUN_TIMELINE=1` in its
 * environment a process writes `timeline <event> <epoch ms>` lines to stderr at the steps of a job
 * (gateway: arrival, payment, offer, accept, body pull, first frame; provider: offer, body, backend
 * call, first token, first frame). Off (undefined, one branch per step) everywhere else.
 */
export const timeline: ((event: string) => void) | undefined =
  process.env.OWLRUN_TIMELINE === "1"
    ? (event) =>
        process.stderr.write(`timeline ${event} ${(performance.timeOrigin + performance.now()).toFixed(3)}\n`)
    : undefined;
