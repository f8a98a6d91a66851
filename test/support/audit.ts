/**
 * The randomized money audit of issue 5, reusable over one gateway or several sharing one database
 * (issue 20): scripted providers that serve, fail mid-stream, reject and drop off, real cashu-ts
 * wallets, and a seeded random sequence of paid requests, refunds, failures, deposits, withdrawals,
 * token sessions, bad tokens and provider payouts, run a few at a time, each sent to a gateway picked
 * at random (so with several processes a key is funded on one and spent on another, and change
 * is fetched from whichever process the client asks). Afterwards every sat is accounted for three ways:
 * - the ledger balances (double entry sums to zero, no hold left open, no change owed);
 * - the ledger's ecash asset equals the gateway wallet's proofs, each one UNSPENT at the mint (NUT-07);
 * - what clients sent = what they got back + what was charged + balances still held at the gateway,
 *   and what was charged = provider earnings (paid out or not) + gateway fees (+ promo for free jobs).
 */
import { randomUUID } from "node:crypto";
import { expect } from "vitest";
import { waitFor } from "../mcp/harness.js";
import { expectBooksClosed, type GatewayBooks, Purse, readSse, seededRandom, sumAccounts } from "./money.js";
import type { Agent } from "./owlrun-agent.js";

export const OK = "audit-ok:tiny";
export const SLOW = "audit-slow:tiny";
export const GARBAGE = "audit-garbage:tiny";
export const BUSY = "audit-busy:tiny";
export const DIE = "audit-die:tiny";
const GONE = "audit-gone:tiny"; // nobody serves it

export type Rng = ReturnType<typeof seededRandom>;

/** The network under audit: its gateways (one or several processes), providers and mint. */
export interface AuditNet {
  /** a gateway to send the next request to */
  pickUrl(rng: Rng): string;
  /** providers that serve OK/SLOW/GARBAGE/BUSY (their keys withdraw earnings) */
  agents: Agent[];
  /** a provider of DIE that drops its connection after two words (a new one per death) */
  startDyingAgent(rng: Rng): Promise<Agent>;
  /** the gateway's books once nothing is open */
  settledBooks(): Promise<GatewayBooks>;
}

/** The scripts the audit's providers run, by model. */
export function auditScript(rng: Rng) {
  const words = () => Array.from({ length: rng.int(1, 25) }, (_, i) => ` w${i}`);
  return (offer: { model: string }) =>
    offer.model === SLOW
      ? { words: Array.from({ length: 30 }, () => " s"), delayMs: 40 }
      : offer.model === GARBAGE
        ? { words: words(), garbageAfterWords: rng.int(0, 3) }
        : offer.model === BUSY
          ? { action: "reject" as const, rejectReason: "busy" }
          : { words: words() };
}
export const DYING_JOB = { dieAfterWords: 2, words: ["a", "b", "c", "d"] };

/**
 * Runs `steps` random steps against `net` (seeded by `seed`) and then checks the books. `client`
 * and `providerPurse` are wallets at the gateways' mint; the client must hold enough to play.
 */
export async function runMoneyAudit(
  net: AuditNet,
  opts: { seed: number; steps: number; client: Purse; providerPurse: Purse; dying: Agent },
): Promise<void> {
  const { seed: SEED, client, providerPurse } = opts;
  const rng = seededRandom(SEED);
  const agents = net.agents;
  let dying = opts.dying;
  /** What the test expects of the gateway, from the client side. */
  const model = {
    /** sats the gateway said it charged (X-Cost-Sats, usage.cost, or paid minus change) */
    charged: 0,
    /** prepaid balances by key (rc_, sk-, or a raw token used as the Bearer key) */
    accounts: new Map<string, number>(),
    providerWithdrawn: 0,
    /** keys an operation is using right now (a withdrawal must not race a chat on the same key) */
    busy: new Set<string>(),
    /** a token the gateway already claimed, to try again */
    spentToken: undefined as string | undefined,
    log: [] as string[],
  };

  const api = (path: string, init: { key?: string; body?: unknown; headers?: Record<string, string> } = {}) =>
    fetch(`${net.pickUrl(rng)}${path}`, {
      method: init.body === undefined ? "GET" : "POST",
      headers: {
        "content-type": "application/json",
        ...(init.key ? { authorization: `Bearer ${init.key}` } : {}),
        ...init.headers,
      },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });

  const chatBody = (modelName: string, stream: boolean) => ({
    model: modelName,
    messages: [{ role: "user", content: "x".repeat(rng.int(1, 120)) }],
    stream,
    ...(rng.next() < 0.5 ? { max_tokens: rng.int(1, 40) } : {}),
  });

  /** The cost and change a response reports (header or last SSE events). */
  async function outcomeOf(res: Response, stream: boolean) {
    if (!stream || res.status !== 200) {
      const change = res.headers.get("x-cashu-change") ?? undefined;
      const body = (await res.json()) as { usage?: { cost: { sats: number } }; error?: { type: string } };
      return { change, cost: body.usage?.cost.sats ?? Number(res.headers.get("x-cost-sats") ?? 0), body };
    }
    const events = (await readSse(res)) as Record<string, any>[];
    const usage = events.find((e) => e?.usage)?.usage as { cost: { sats: number } } | undefined;
    const change = events.find((e) => e?.type === "cashu_change") as { token: string } | undefined;
    expect(events.at(-1)).toBe("[DONE]");
    return { change: change?.token || undefined, cost: usage?.cost.sats ?? 0, body: events };
  }

  /** One X-Cashu request: whatever happens, the client pays exactly what the gateway charged. */
  async function xcashu(modelName: string, stream: boolean) {
    const amount = rng.int(3, 60);
    const token = await client.token(amount, rng.next() < 0.3 ? "A" : "B");
    const res = await api("/v1/chat/completions", {
      body: chatBody(modelName, stream),
      headers: { "x-cashu": token },
    });
    const { change, cost, body } = await outcomeOf(res, stream);
    const underpaid =
      res.status === 400 && (body as { error?: { type: string } }).error?.type === "insufficient_payment";
    if (res.status === 402 || underpaid) {
      // refused before claiming (below the minimum; NUT-24 answers 400): the token is still the client's
      await client.receive(token);
      return `402 ${amount}`;
    }
    const back = change ? await client.receive(change) : 0;
    if (modelName !== GONE) model.spentToken = token;
    expect(back + cost, `paid ${amount}, got ${back} back, charged ${cost}`).toBe(amount);
    model.charged += cost;
    return `${res.status} paid ${amount} charged ${cost}`;
  }

  /** A streamed request the client walks away from; the change waits under its request id. */
  async function disconnect() {
    const amount = rng.int(30, 60);
    const token = await client.token(amount);
    const requestId = randomUUID();
    const abort = new AbortController();
    const res = await fetch(`${net.pickUrl(rng)}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-cashu": token, "x-owlrun-request-id": requestId },
      body: JSON.stringify({ model: SLOW, messages: [{ role: "user", content: "long" }], stream: true }),
      signal: abort.signal,
    });
    expect(res.status).toBe(200);
    await res.body!.getReader().read();
    abort.abort();
    const stored = await waitFor(
      async () => {
        const r = await api(`/v1/cashu/change/${requestId}`);
        return r.status === 200 ? ((await r.json()) as { token: string; change_sats: number }) : undefined;
      },
      15_000,
      `change of ${requestId}`,
    );
    const back = await client.receive(stored.token);
    expect(back).toBe(stored.change_sats);
    model.charged += amount - back;
    return `disconnect paid ${amount} charged ${amount - back}`;
  }

  /** A provider drops its connection mid-stream: the buyer pays nothing. */
  let dyingTurn: Promise<unknown> = Promise.resolve();
  function providerDies(): Promise<string> {
    // One at a time: each run replaces the node that died.
    const run = dyingTurn.then(dieOnce);
    dyingTurn = run.catch(() => undefined);
    return run;
  }

  async function dieOnce() {
    const r = await xcashu(DIE, true);
    await dying.close();
    dying = await net.startDyingAgent(rng);
    return `die: ${r}`;
  }

  async function badToken() {
    const kind = rng.pick(["malformed", "spent", "empty"] as const);
    const header =
      kind === "spent" && model.spentToken
        ? model.spentToken
        : kind === "empty"
          ? "cashuBo2F0gA"
          : `cashuB${"x".repeat(rng.int(1, 80))}`;
    const res = await api("/v1/chat/completions", {
      body: chatBody(OK, false),
      headers: { "x-cashu": header },
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(res.headers.get("x-cashu-change")).toBeNull();
    return `bad ${kind} → ${res.status}`;
  }

  /** A key to pay from, not in use by another operation: an existing one or a new account. */
  async function someAccount(): Promise<string> {
    const keys = [...model.accounts.keys()].filter((k) => !model.busy.has(k));
    const key = keys.length > 0 && rng.next() < 0.6 ? rng.pick(keys) : await newAccount();
    model.busy.add(key);
    return key;
  }

  /** A new rc_ account, sk- session or raw-token session, funded with a token. */
  async function newAccount(): Promise<string> {
    const kind = rng.pick(["rc", "sk", "raw"] as const);
    const amount = rng.int(5, 80);
    if (kind === "rc") {
      const { api_key } = (await (await api("/v1/auth/register", { body: {} })).json()) as {
        api_key: string;
      };
      const res = await api("/v1/balance/topup", {
        key: api_key,
        body: { token: await client.token(amount) },
      });
      expect(res.status).toBe(200);
      model.accounts.set(api_key, amount);
      return api_key;
    }
    const token = await client.token(amount);
    if (kind === "sk") {
      const res = await api("/v1/balance/create", { body: { token } });
      expect(res.status).toBe(201);
      const { api_key } = (await res.json()) as { api_key: string };
      model.accounts.set(api_key, amount);
      return api_key;
    }
    model.accounts.set(token, amount); // becomes a session on first use
    return token;
  }

  /** Runs `fn` with a key of its own, released afterwards. */
  async function withAccount(fn: (key: string) => Promise<string>): Promise<string> {
    const key = await someAccount();
    try {
      return await fn(key);
    } finally {
      model.busy.delete(key);
    }
  }

  async function accountChat(key: string) {
    const stream = rng.next() < 0.5;
    const modelName = rng.pick([OK, OK, GARBAGE, BUSY]);
    const res = await api("/v1/chat/completions", { key, body: chatBody(modelName, stream) });
    const { cost } = await outcomeOf(res, stream);
    expect([200, 402, 502, 503]).toContain(res.status);
    model.accounts.set(key, model.accounts.get(key)! - cost);
    model.charged += cost;
    return `account ${modelName} ${res.status} charged ${cost}`;
  }

  async function accountDeposit(key: string) {
    const amount = rng.int(3, 40);
    const res = await api("/v1/balance/topup", { key, body: { token: await client.token(amount) } });
    expect(res.status).toBe(200);
    model.accounts.set(key, model.accounts.get(key)! + amount);
    return `deposit ${amount}`;
  }

  async function accountWithdraw(key: string) {
    const { balance_sats } = (await (await api("/v1/balance", { key })).json()) as { balance_sats: number };
    if (balance_sats < 1) return "withdraw: nothing";
    const amount = rng.next() < 0.5 ? balance_sats : rng.int(1, balance_sats);
    const res = await api("/v1/balance/withdraw", { key, body: { amount_sats: amount } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { token: string; amount_sats: number };
    expect(await client.receive(body.token)).toBe(amount);
    model.accounts.set(key, model.accounts.get(key)! - amount);
    return `withdraw ${amount}`;
  }

  async function providerPayout() {
    const agent = rng.pick(agents);
    const res = await api("/v1/provider/withdraw-ecash", { key: agent.apiKey, body: {} });
    if (res.status === 402) return "payout: nothing yet";
    expect(res.status).toBe(200);
    const body = (await res.json()) as { token: string; amount_sats: number };
    expect(await providerPurse.receive(body.token)).toBe(body.amount_sats);
    model.providerWithdrawn += body.amount_sats;
    return `payout ${body.amount_sats}`;
  }

  const ACTIONS = {
    json: () => xcashu(rng.pick([OK, OK, SLOW]), false),
    stream: () => xcashu(OK, true),
    garbage: () => xcashu(GARBAGE, rng.next() < 0.5),
    busy: () => xcashu(BUSY, rng.next() < 0.5),
    gone: () => xcashu(GONE, false),
    disconnect,
    die: providerDies,
    bad: badToken,
    accountChat: () => withAccount(accountChat),
    accountDeposit: () => withAccount(accountDeposit),
    accountWithdraw: () => withAccount(accountWithdraw),
    payout: providerPayout,
  };
  const WEIGHTS: Record<keyof typeof ACTIONS, number> = {
    json: 6,
    stream: 6,
    garbage: 2,
    busy: 2,
    gone: 1,
    disconnect: 2,
    die: 1,
    bad: 2,
    accountChat: 6,
    accountDeposit: 2,
    accountWithdraw: 2,
    payout: 2,
  };

  /** Fails with the seed and the last steps, so the run can be replayed. */
  async function step(name: string, fn: () => Promise<string>) {
    try {
      model.log.push(`${name}: ${await fn()}`);
    } catch (err) {
      const e = err as Error;
      e.message = `[seed ${SEED}] ${name}: ${e.message}\n  last steps: ${model.log.slice(-8).join(" | ")}`;
      throw e;
    }
  }

  for (let done = 0; done < opts.steps;) {
    const batch = Math.min(rng.int(1, 3), opts.steps - done);
    const names = Array.from({ length: batch }, () => rng.weighted(WEIGHTS));
    await Promise.all(names.map((n) => step(n, ACTIONS[n])));
    done += batch;
  }
  if (process.env.OWLRUN_AUDIT_LOG) console.log(model.log.join("\n"));
  await dying.close();
  // Cancelled jobs settle just after the client leaves; the books are read once nothing is open.
  const books = await net.settledBooks();
  const why = `[seed ${SEED}] ${JSON.stringify(Object.fromEntries(books.balances))}`;

  // 1–2. The ledger: balanced, nothing open, nothing owed as change; its ecash asset is exactly the
  //    gateway wallet's proofs, all unspent at the mint; every token it handed out has been
  //    redeemed by its client (nothing in limbo).
  expectBooksClosed(books, why);
  expect(await client.notUnspent()).toBe(0);
  expect(await providerPurse.notUnspent()).toBe(0);

  // 3. Clients: sent = got back + charged + still held; per key, the gateway's balance is ours
  //    (asked of a gateway picked at random).
  const held = [...model.accounts.values()].reduce((s, v) => s + v, 0);
  expect(client.sent - client.received, why).toBe(model.charged + held);
  expect(sumAccounts(books, "user:"), why).toBe(held * 1000);
  for (const [key, sats] of model.accounts) {
    const res = await api("/v1/balance", { key });
    expect(((await res.json()) as { balance_sats: number }).balance_sats, why).toBe(sats);
  }
  expect(client.balance).toBe(client.minted - client.sent + client.received);

  // 4. What was charged went to providers (paid out or still earned) and the gateway's fees;
  //    free-tier jobs are paid to providers from promo, which goes negative by as much.
  const providers = sumAccounts(books, "provider:") + model.providerWithdrawn * 1000;
  const fees = books.balances.get("equity:fees") ?? 0;
  const promo = books.balances.get("equity:promo") ?? 0;
  expect(providers + fees + promo, why).toBe(model.charged * 1000);
  expect(providerPurse.balance).toBe(model.providerWithdrawn);

  // 5. And so the whole system: every sat minted is in a purse or in the gateway's ecash.
  expect(client.balance + providerPurse.balance + books.ecashMsat / 1000, why).toBe(client.minted);
}
