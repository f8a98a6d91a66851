/**
 * Node sessions: a newer connection replaces the older, silent nodes are dropped, heartbeat_ack
 * carries what the gateway knows, rogue nodes are disconnected without disturbing others, drain and
 * job_complete reach the node, and nodes reconnect after the gateway restarts on the same data dir.
 */
import { afterAll, describe, expect, it } from "vitest";
import { CLOSE_POLICY, CLOSE_REPLACED } from "../../gateway/routing/index.js";
import { OwlrunAgent } from "../support/owlrun-agent.js";
import { request, sleep, startGateway, type TestGateway, tempDir, text, waitUntil } from "./harness.js";

const gateways: TestGateway[] = [];
afterAll(async () => {
  for (const g of gateways) await g.close();
});
const gateway = async (...args: Parameters<typeof startGateway>) => {
  const g = await startGateway(...args);
  gateways.push(g);
  return g;
};

describe("sessions", () => {
  it("a newer connection of the same node replaces the older one", async () => {
    const g = await gateway();
    const first = await g.agent({ models: ["m"], reply: ["old"] });
    const second = new OwlrunAgent(g.url, first.apiKey, first.nodeId, { models: ["m"], reply: ["new"] });
    await second.connect();
    await first.waitFor(() => first.closeCode !== undefined, 2_000, "old connection closed");
    expect(first.closeCode).toBe(CLOSE_REPLACED);
    expect(second.connected()).toBe(true);
    expect(g.routing.dispatcher.nodesOnline()).toBe(1);
    const job = await g.routing.dispatcher.dispatch(request("m"));
    expect(await text(job)).toBe("new");
    expect(first.offered).toHaveLength(0);
    await second.close();
  });

  it("drops nodes that stop heartbeating and answering pings; pongs count as alive", async () => {
    const g = await gateway({ heartbeatTimeoutMs: 300, pingIntervalMs: 100 });
    const beating = await g.agent({ models: ["hb"], heartbeatMs: 100, answerPings: false });
    const ponging = await g.agent({ models: ["hb"], heartbeatMs: 0 });
    const mute = await g.agent({ models: ["mute"], heartbeatMs: 0, answerPings: false });
    expect(g.routing.dispatcher.nodesOnline()).toBe(3);
    await mute.waitFor(() => !mute.connected(), 2_000, "mute node dropped");
    expect(g.routing.dispatcher.nodesOnline()).toBe(2);
    expect(g.routing.dispatcher.models()).toEqual([{ model: "hb", nodes: 2 }]);
    await sleep(500);
    expect([beating.connected(), ponging.connected()]).toEqual([true, true]);
    expect(ponging.pings).toBeGreaterThan(2);
  });

  it("answers heartbeats with heartbeat_ack carrying the node's numbers", async () => {
    const g = await gateway({
      ackInfo: (nodeId) => ({
        balance_sats: nodeId.length,
        earned_total_sats: 4200,
        btc_live_usd: 97_000,
        btc_daily_avg: 96_500,
        btc_price_status: "live",
        broadcasts: [
          { id: 1, title: "hi", message: "welcome", severity: "info", created_at: "2026-01-01T00:00:00Z" },
        ],
      }),
    });
    const a = await g.agent({ models: ["ack"], reply: ["a", "b", "c"] });
    await a.waitFor(() => a.acks.length === 1, 1_000, "first ack");
    expect(a.acks[0]).toEqual({
      type: "heartbeat_ack",
      status: "ok",
      jobs_today: 0,
      tokens_today: 0,
      earned_today_sats: 0,
      earned_total_sats: 4200,
      balance_sats: a.nodeId.length,
      queue_depth_global: 0,
      btc_live_usd: 97_000,
      btc_daily_avg: 96_500,
      btc_price_status: "live",
      broadcasts: [
        { id: 1, title: "hi", message: "welcome", severity: "info", created_at: "2026-01-01T00:00:00Z" },
      ],
      withdraw_history: [],
      karma_score: 0,
      karma_tier: "",
      free_tier_jobs: 0,
    });
    const job = await g.routing.dispatcher.dispatch(request("ack"));
    await text(job);
    await job.outcome;
    await sleep(1_000); // acks are throttled to one a second per node
    a.sendHeartbeat();
    await a.waitFor(() => a.acks.length === 2, 1_000, "second ack");
    expect(a.acks[1]).toMatchObject({ jobs_today: 1 });
    expect(a.acks[1]!.tokens_today).toBeGreaterThanOrEqual(3);
  });

  it("drain stops offers to a node that stays online; job_complete reaches the node that served", async () => {
    const g = await gateway();
    const a = await g.agent({ models: ["dr"], reply: ["x"] });
    const req = request("dr");
    const job = await g.routing.dispatcher.dispatch(req);
    await text(job);
    expect(g.routing.jobComplete(req.jobId, { tokens: 9, earnedUsd: 0.0001 })).toBe(true);
    await a.waitFor(() => a.completes.length === 1, 1_000, "job_complete");
    expect(a.completes[0]).toEqual({
      type: "job_complete",
      job_id: a.offered[0],
      tokens: 9,
      earned_usd: 0.0001,
    });
    expect(g.routing.jobComplete("unknown", { tokens: 1, earnedUsd: 0 })).toBe(false);

    expect(g.routing.drain(a.nodeId)).toBe(true);
    await a.waitFor(() => a.drained, 1_000, "drain");
    expect(g.routing.dispatcher.nodesOnline()).toBe(1);
    expect(g.routing.dispatcher.models()).toEqual([]);
    await expect(g.routing.dispatcher.dispatch(request("dr"))).rejects.toMatchObject({
      reason: "no_providers",
    });
  });
});

describe("rogue nodes", () => {
  it("are disconnected one by one while another node's job completes untouched", async () => {
    const g = await gateway();
    const honest = await g.agent({ models: ["good"], reply: ["a", "b", "c", "d", "e"], chunkDelayMs: 60 });
    const job = await g.routing.dispatcher.dispatch(request("good"));
    const honestJob = honest.offered[0]!;
    const rogue = (name: string) => g.agent({ models: [`rogue-${name}`] });
    const cases: [string, (r: OwlrunAgent) => void, number][] = [
      ["not-json", (r) => r.send("{not json"), CLOSE_POLICY],
      ["no-type", (r) => r.send(JSON.stringify({ job_id: honestJob })), CLOSE_POLICY],
      ["binary", (r) => r.send(Buffer.from([0xde, 0xad, 0xbe, 0xef])), CLOSE_POLICY],
      ["bad-fields", (r) => r.sendJson({ type: "heartbeat", gpu_util_pct: "very hot" }), CLOSE_POLICY],
      ["unknown-job", (r) => r.sendJson({ type: "accept", job_id: "never-offered" }), CLOSE_POLICY],
      [
        "steal",
        (r) =>
          r.sendJson({
            type: "proxy_chunk",
            job_id: honestJob,
            data: 'data: {"choices":[{"delta":{"content":"PWNED"}}]}\n\n',
          }),
        CLOSE_POLICY,
      ],
      ["done-other", (r) => r.sendJson({ type: "proxy_done", job_id: honestJob }), CLOSE_POLICY],
      ["oversized", (r) => r.sendJson({ type: "heartbeat", pad: "x".repeat(70 * 1024) }), 1009],
    ];
    const rogues = await Promise.all(cases.map(([name]) => rogue(name)));
    const polite = await g.agent({ models: ["polite"] });
    cases.forEach(([, act], i) => act(rogues[i]!));
    polite.sendJson({ type: "gpu_report", future_field: true }); // unknown types are ignored
    polite.sendJson({ type: "heartbeat", gpu_util_pct: 1, something_new: [1, 2] }); // unknown fields too
    for (const [i, r] of rogues.entries()) {
      await r.waitFor(() => r.closeCode !== undefined, 2_000, `${cases[i]![0]} disconnected`);
      expect(r.closeCode, cases[i]![0]).toBe(cases[i]![2]);
    }
    expect(await text(job)).toBe("abcde");
    expect(await job.outcome).toMatchObject({ status: "completed", countedCompletionTokens: 5 });
    expect([honest.connected(), polite.connected()]).toEqual([true, true]);
    expect(g.routing.dispatcher.nodesOnline()).toBe(2);
  });
});

describe("restart", () => {
  it("a node reconnects after the gateway restarts on the same data dir: its key still works", async () => {
    const dir = tempDir();
    const g1 = await startGateway({}, dir);
    const a = await g1.agent({ models: ["m"], reply: ["back"] });
    const port = Number(new URL(g1.url).port);
    await g1.close();
    await a.waitFor(() => !a.connected(), 2_000, "disconnected by the restart");
    const g2 = await gateway({}, dir, port);
    // What the Owlrun agent does: reconnect with the key it has (re-registering is optional).
    await a.connect();
    await waitUntil(() => g2.routing.dispatcher.nodesOnline() === 1);
    const job = await g2.routing.dispatcher.dispatch(request("m"));
    expect([job.nodeId, await text(job)]).toEqual([a.nodeId, "back"]);
    await a.close();
  });

  it("close() fails the jobs in flight: waiting ones are refunded, running ones end failed", async () => {
    const g = await startGateway();
    await g.agent({ models: ["run"], reply: ["a", "b", "c", "d"], chunkDelayMs: 100 });
    await g.agent({ models: ["wait"], job: { firstDelayMs: 1_000 } });
    const running = await g.routing.dispatcher.dispatch(request("run"));
    const waiting = g.routing.dispatcher.dispatch(request("wait")).catch((e: unknown) => e);
    await sleep(100);
    await g.close();
    expect(await waiting).toMatchObject({ name: "NoProviderError" });
    await text(running);
    expect((await running.outcome).status).toBe("failed");
  });
});
