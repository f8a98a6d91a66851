/**
 * The node-facing HTTP endpoints of the Owlrun protocol: provider signup (rate limited per IP,
 * closable), registration, and the job-body pull that only the assigned node may make. Errors use
 * the gateway's shape `{"error":{"message","type","code"}}`.
 */
import express, { type NextFunction, type Request, type Response, type Router } from "express";
import * as z from "zod";
import { ErrorBodySchema, type RouteGroup } from "../../src/shared/discovery/index.js";
import { type Logger, timeline } from "../../src/shared/index.js";
import { lightningAddressProblem } from "../../src/shared/lnurl.js";
import type { Attempt } from "./attempt.js";
import { RegisterBody } from "./protocol.js";
import type { Registry } from "./registry.js";
import type { RemoteBody } from "./remote.js";
import type { RoutingStore } from "./store.js";

export interface HttpDeps {
  store: RoutingStore;
  registry: Registry;
  /** live attempts by wire job id */
  attempts: Map<string, Attempt>;
  signupOpen: boolean;
  /** Lightning addresses on loopback hosts are accepted (tests, devnet); private ones never */
  allowLoopbackLnurl: boolean;
  log: Logger;
  /** the body of a job another gateway process offered (cluster); undefined when alone */
  remoteBody?: (wireId: string, keyHash: string) => Promise<RemoteBody>;
  /** a node re-registered (the cluster republishes its models) */
  registered?: () => void;
}

const HOUR = 3_600_000;

function sendError(res: Response, status: number, type: string, message: string): void {
  res.status(status).json({ error: { message, type, code: status } });
}

/** `Authorization: Bearer <key>`, else `?api_key=` (Owlrun nodes use both). */
export function providerKeyOf(req: {
  headers: { authorization?: string };
  url?: string;
}): string | undefined {
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? "")?.[1];
  if (bearer) return bearer;
  const q = new URL(req.url ?? "/", "http://gateway").searchParams.get("api_key");
  return q || undefined;
}

/** Rate-limit bucket of an address: IPv4 as is, IPv6 by its /64 (one host usually owns a whole /64). */
export function ipBucket(ip: string): string {
  const v4 = /^(?:::ffff:)?(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  if (v4) return v4[1]!;
  const [head = "", tail] = ip.split("%")[0]!.split("::");
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups =
    tail === undefined ? h : [...h, ...Array<string>(Math.max(0, 8 - h.length - t.length)).fill("0"), ...t];
  return `${groups
    .slice(0, 4)
    .map((g) => g.toLowerCase().replace(/^0+(?=.)/, ""))
    .join(":")}::/64`;
}

/** Sliding one-hour window of signups per address bucket. */
export class SignupLimiter {
  private readonly hits = new Map<string, number[]>();

  constructor(private readonly perHour: number) {}

  /** Records a signup; the seconds to wait when the bucket is full. */
  take(ip: string, now = Date.now()): number | undefined {
    const key = ipBucket(ip);
    const recent = (this.hits.get(key) ?? []).filter((t) => t > now - HOUR);
    if (recent.length >= this.perHour) {
      this.hits.set(key, recent);
      return Math.max(1, Math.ceil((recent[0]! + HOUR - now) / 1000));
    }
    recent.push(now);
    this.hits.set(key, recent);
    return undefined;
  }

  prune(now = Date.now()): void {
    for (const [key, times] of this.hits) {
      if (times.every((t) => t <= now - HOUR)) this.hits.delete(key);
    }
  }
}

const ProviderKeyQuery = z.object({
  api_key: z.string().optional().meta({ description: "the provider key, when not sent as a Bearer key" }),
});

/** The Owlrun node protocol's HTTP side (shared/protocols/owlrun-node.md). */
export const nodeRoutes: RouteGroup = {
  name: "provider nodes",
  description: "The Owlrun node protocol: signup, registration, the job WebSocket and the job-body pull",
  errorSchema: ErrorBodySchema,
  routes: [
    {
      method: "post",
      path: "/v1/gateway/signup",
      summary: "Get a provider key (owlr_prov_…); rate limited per address, may be closed",
      responses: { 201: { description: "the key", schema: z.object({ api_key: z.string() }) } },
      errors: { 403: "signup closed by the operator", 429: "too many signups from this address" },
    },
    {
      method: "post",
      path: "/v1/gateway/register",
      summary: "Register a node (id, GPU, models, Lightning address)",
      security: ["provider"],
      query: ProviderKeyQuery,
      body: RegisterBody,
      responses: {
        201: {
          description: "registered",
          schema: z.object({ status: z.literal("registered"), node_id: z.string() }),
        },
      },
      errors: {
        400: "malformed registration, or a Lightning address on this machine or a private network",
        401: "unknown provider key",
        403: "node id of another key",
      },
    },
    {
      method: "get",
      path: "/v1/gateway/ws",
      summary: "The node's WebSocket: heartbeats, job offers, streamed answers (Owlrun protocol)",
      security: ["provider"],
      query: ProviderKeyQuery,
      websocket: true,
      responses: { 101: { description: "switching to the WebSocket protocol" } },
      errors: { 401: "unknown provider key" },
    },
    {
      method: "get",
      path: "/v1/gateway/jobs/:id/proxy/request",
      summary: "The body of a job offered to this node (only the assigned node may pull it)",
      security: ["provider"],
      query: ProviderKeyQuery,
      responses: { 200: { description: "the OpenAI request body", schema: z.looseObject({}) } },
      errors: {
        401: "unknown provider key",
        403: "job assigned to another node",
        404: "no such job waiting",
      },
    },
  ],
};

export function providerRouter(deps: HttpDeps, limiter: SignupLimiter): Router {
  const { store, registry, attempts, log } = deps;
  const router = express.Router();
  const json = express.json({ limit: "256kb" });

  router.post("/v1/gateway/signup", async (req, res) => {
    if (!deps.signupOpen) {
      return sendError(
        res,
        403,
        "signup_closed",
        "provider signup is closed on this gateway; ask its operator",
      );
    }
    const wait = limiter.take(req.ip ?? req.socket.remoteAddress ?? "unknown");
    if (wait !== undefined) {
      res.setHeader("Retry-After", String(wait));
      return sendError(res, 429, "rate_limited", "too many provider signups from this address; retry later");
    }
    const key = await store.createKey("signup");
    log.info("provider key issued by signup");
    res.status(201).json({ api_key: key });
  });

  // The key is checked before the body is read (the router is mounted before the gateway's parser).
  const knownKey = async (req: Request, res: Response, next: NextFunction) => {
    const key = providerKeyOf(req);
    if (!key || !(await store.keyHash(key)))
      return sendError(res, 401, "invalid_key", "missing or unknown provider key");
    next();
  };

  router.post("/v1/gateway/register", knownKey, json, async (req, res) => {
    const key = providerKeyOf(req)!;
    const keyHash = await store.keyHash(key);
    if (!keyHash) return sendError(res, 401, "invalid_key", "missing or unknown provider key");
    const parsed = RegisterBody.safeParse(req.body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue?.path.join(".") || "body";
      return sendError(res, 400, "invalid_request", `invalid registration: ${where}: ${issue?.message}`);
    }
    const body = parsed.data;
    // Payouts would dial this address: refuse one pointing at this machine or a private network.
    const payTo = body.lightning_address
      ? lightningAddressProblem(body.lightning_address, deps.allowLoopbackLnurl)
      : undefined;
    if (payTo) return sendError(res, 400, "invalid_lightning_address", payTo);
    if (body.api_key !== key) {
      return sendError(res, 403, "forbidden", "api_key in the body must equal the bearer key");
    }
    if (!(await store.register(keyHash, body))) {
      return sendError(res, 403, "forbidden", `node id ${body.node_id} belongs to another provider key`);
    }
    const live = registry.get(body.node_id);
    if (live && live.keyHash === keyHash) {
      registry.setModels(live, body.models, body.embedding_models);
      live.freeTierPct = body.free_tier_pct ?? 0;
      live.inlineBody = body.inline_job_body === true;
      deps.registered?.();
    }
    log.info("node registered", { node: body.node_id, models: body.models, version: body.version });
    res.status(201).json({ status: "registered", node_id: body.node_id });
  });

  router.get("/v1/gateway/jobs/:id/proxy/request", async (req, res) => {
    const key = providerKeyOf(req);
    const keyHash = key ? await store.keyHash(key) : undefined;
    if (!keyHash) return sendError(res, 401, "invalid_key", "missing or unknown provider key");
    const attempt = attempts.get(String(req.params.id));
    if (!attempt && deps.remoteBody) {
      // Offered by another gateway process: the load balancer may send the pull to any of them.
      const remote = await deps.remoteBody(String(req.params.id), keyHash).catch(() => undefined);
      if (remote === "forbidden") return sendError(res, 403, "forbidden", "this job is not assigned to you");
      if (remote) {
        res.setHeader("Cache-Control", "no-store");
        return void res.json(remote.body);
      }
    }
    if (!attempt || attempt.ended) return sendError(res, 404, "not_found", "no such job is waiting");
    if (attempt.node.keyHash !== keyHash) {
      log.warn("body pull refused: job assigned to another node", { job: attempt.wireId });
      return sendError(res, 403, "forbidden", "this job is not assigned to you");
    }
    res.setHeader("Cache-Control", "no-store");
    res.json(attempt.body);
    timeline?.("gw.pulled");
  });

  // Malformed JSON and oversized bodies on these routes answer in the gateway's error shape.
  router.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    const e = err as { type?: string; status?: number };
    if (e?.type === "entity.too.large")
      return sendError(res, 413, "request_too_large", "request body too large");
    if (e?.type === "entity.parse.failed" || e?.status === 400) {
      return sendError(res, 400, "invalid_request", "malformed JSON body");
    }
    next(err);
  });
  return router;
}
