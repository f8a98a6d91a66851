/**
 * The client side of bench/gateway.ts's throughput runs, in its own process so the gateway's event
 * loop does not also run the clients (in one process, one client already kept the loop busy, so the
 * old "16 clients vs 1" ratio measured the clients as much as the gateway). Reads a JSON file of
 * per-request headers, sends them as CLIENTS concurrent loops of non-streaming chat requests, prints
 * `START` when the clock starts and `RESULT {…}` at the end.
 *
 *   tsx bench/gateway-load.ts <gatewayUrl> <headers.json> <clients> <model>
 */
import { readFileSync } from "node:fs";
import { pct } from "./results.js";

const [url, headersFile, clientsArg, model] = process.argv.slice(2);
const requests = JSON.parse(readFileSync(headersFile!, "utf8")) as Record<string, string>[];
const clients = Number(clientsArg);
const body = JSON.stringify({ model, messages: [{ role: "user", content: "hi" }], max_tokens: 8 });

const post = async (headers: Record<string, string>) => {
  const r = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
  if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${await r.text()}`);
  await r.arrayBuffer();
};

// One warm-up request per client loop's connection is not counted: the first request of a run
// opens a connection the others reuse.
await post(requests.shift()!);
process.stdout.write("START\n");
const latencies: number[] = [];
let next = 0;
const t0 = performance.now();
await Promise.all(
  Array.from({ length: clients }, async () => {
    while (next < requests.length) {
      const headers = requests[next++]!;
      const s = performance.now();
      await post(headers);
      latencies.push(performance.now() - s);
    }
  }),
);
const ms = performance.now() - t0;
process.stdout.write(
  `RESULT ${JSON.stringify({ requests: latencies.length, ms, p50_ms: pct(latencies, 50), p99_ms: pct(latencies, 99) })}\n`,
);
