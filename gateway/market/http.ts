/**
 * The market's routes under /v1/market (402ai's ai-for-hire API). Identity is an account key
 * (`rc_…`, `sk-…`, or a cashu token used as the key) in `X-Token` or `Authorization: Bearer`;
 * posting a task and quoting are paid from the balance or with an `X-Cashu` token (change in
 * `X-Cashu-Change`). The router parses its own JSON bodies so deliveries may be larger than the
 * gateway's usual body limit: mount it before the gateway's JSON parser.
 */
import express, { type Request, type Response, Router } from "express";
import * as z from "zod";
import { createdJson, okJson, type RouteGroup } from "../../src/shared/discovery/index.js";
import { ErrorBodySchema, parseWith } from "../api/errors.js";
import type { AccountPayments } from "../payments/account-payments.js";
import type { AccountRow } from "../payments/accounts.js";
import { PaymentError } from "../payments/errors.js";
import type { CashuPayer, Market } from "./market.js";
import {
  AcceptRequestSchema,
  CollectRequestSchema,
  CollectResponseSchema,
  CreateTaskRequestSchema,
  CreateTaskResponseSchema,
  DeliverRequestSchema,
  DeliverySchema,
  DisputeRequestSchema,
  EditQuoteRequestSchema,
  ListTasksQuerySchema,
  MarketInfoSchema,
  MeResponseSchema,
  MessageRequestSchema,
  MessagesResponseSchema,
  MessageViewSchema,
  QuoteRequestSchema,
  QuoteResponseSchema,
  QuoteViewSchema,
  TaskListResponseSchema,
  TaskViewSchema,
} from "./schemas.js";

/** Market bodies may be absent (POST …/confirm): an absent body is an empty object. */
const parse = <S extends z.ZodType>(schema: S, body: unknown): z.infer<S> => parseWith(schema, body ?? {});

export interface MarketHttpDeps {
  market: Market;
  accounts: AccountPayments;
  /** JSON body limit of every route but deliver */
  maxBodyBytes: number;
}

export function marketRouter(deps: MarketHttpDeps): Router {
  const { market } = deps;
  const r = Router();
  // base64 grows a file by 4/3; leave room for the other fields.
  const deliverLimit = Math.ceil((market.options.maxDeliveryBytes * 4) / 3) + 64 * 1024;
  const keyOf = (req: Request) =>
    req.get("x-token")?.trim() || /^Bearer\s+(.+)$/i.exec(req.get("authorization") ?? "")?.[1]?.trim();

  /** The caller's account (required), rate limited once per request (kept in res.locals). */
  const auth = async (req: Request, res: Response): Promise<AccountRow> => {
    if (res.locals.marketCaller) return res.locals.marketCaller as AccountRow;
    const key = keyOf(req);
    if (!key)
      throw new PaymentError(
        "invalid_key",
        "send your account key as X-Token: <key> or Authorization: Bearer <key> (get one with POST /v1/auth/register)",
        401,
      );
    const account = await deps.accounts.authenticate(key);
    market.rateLimit(account);
    res.locals.marketCaller = account;
    return account;
  };

  /** An X-Cashu token paying this request's fee; its change goes out in X-Cashu-Change. */
  const cashuOf = (req: Request, res: Response): CashuPayer | undefined => {
    const token = req.get("x-cashu")?.trim();
    return token
      ? {
          token,
          onChange: (change) => res.setHeader("X-Cashu-Change", change),
          onOpen: (id) => res.setHeader("X-Owlrun-Request-Id", id),
        }
      : undefined;
  };

  const id = (req: Request, name = "id") => String(req.params[name]);

  // Nobody gets a body read before they are known: every market route with a body needs a key, and
  // a delivery (megabytes) is read only from the task's hired worker while it may deliver.
  r.post(
    "/v1/market/tasks/:id/deliver",
    async (req, res, next) => {
      await market.checkMayDeliver(await auth(req, res), id(req));
      next();
    },
    express.json({ limit: deliverLimit }),
  );
  r.use(
    "/v1/market",
    async (req, res, next) => {
      if (req.method !== "GET" && req.method !== "HEAD") await auth(req, res);
      next();
    },
    express.json({ limit: deps.maxBodyBytes }),
  );

  r.get("/v1/market/info", (_req, res) => {
    res.json(market.info());
  });

  r.get("/v1/market/tasks", (req, res) => {
    const q = parse(ListTasksQuerySchema, req.query);
    res.json({ tasks: market.listTasks(q), limit: q.limit, offset: q.offset });
  });

  r.post("/v1/market/tasks", async (req, res) => {
    const caller = await auth(req, res);
    const body = parse(CreateTaskRequestSchema, req.body);
    res.status(201).json(await market.createTask(caller, body, cashuOf(req, res)));
  });

  /** Public; with a key, the caller also sees their part (quotes, delivery). */
  r.get("/v1/market/tasks/:id", async (req, res) => {
    const caller = keyOf(req) ? await auth(req, res) : undefined;
    res.json(await market.getTask(id(req), caller));
  });

  r.post("/v1/market/tasks/:id/quotes", async (req, res) => {
    const caller = await auth(req, res);
    const body = parse(QuoteRequestSchema, req.body);
    res.status(201).json(await market.submitQuote(caller, id(req), body, cashuOf(req, res)));
  });

  r.patch("/v1/market/tasks/:id/quotes/:qid", async (req, res) => {
    const caller = await auth(req, res);
    res.json(
      await market.editQuote(caller, id(req), id(req, "qid"), parse(EditQuoteRequestSchema, req.body)),
    );
  });

  r.post("/v1/market/tasks/:id/quotes/:qid/accept", async (req, res) => {
    const caller = await auth(req, res);
    const { price_sats } = parse(AcceptRequestSchema, req.body);
    res.json(await market.accept(caller, id(req), id(req, "qid"), price_sats));
  });

  r.get("/v1/market/tasks/:id/quotes/:qid/messages", async (req, res) => {
    const caller = await auth(req, res);
    res.json(await market.messages(caller, id(req), id(req, "qid")));
  });

  r.post("/v1/market/tasks/:id/quotes/:qid/messages", async (req, res) => {
    const caller = await auth(req, res);
    const { body } = parse(MessageRequestSchema, req.body);
    res.status(201).json(await market.sendMessage(caller, id(req), id(req, "qid"), body));
  });

  r.post("/v1/market/tasks/:id/deliver", async (req, res) => {
    const caller = await auth(req, res);
    res.json(await market.deliver(caller, id(req), parse(DeliverRequestSchema, req.body)));
  });

  r.get("/v1/market/tasks/:id/delivery", async (req, res) => {
    const caller = await auth(req, res);
    res.json(await market.delivery(caller, id(req)));
  });

  r.post("/v1/market/tasks/:id/confirm", async (req, res) => {
    const caller = await auth(req, res);
    res.json(await market.confirm(caller, id(req)));
  });

  r.post("/v1/market/tasks/:id/dispute", async (req, res) => {
    const caller = await auth(req, res);
    res.json(await market.dispute(caller, id(req), parse(DisputeRequestSchema, req.body).reason));
  });

  r.post("/v1/market/tasks/:id/cancel", async (req, res) => {
    const caller = await auth(req, res);
    res.json(await market.cancel(caller, id(req)));
  });

  r.post("/v1/market/collect", async (req, res) => {
    const caller = await auth(req, res);
    const out = await market.collect(caller, parse(CollectRequestSchema, req.body));
    res.status(out.state === "paid" ? 200 : 202).json(out);
  });

  r.get("/v1/market/me", async (req, res) => {
    res.json(await market.me(await auth(req, res)));
  });

  return r;
}

const key = ["bearer"] as const;
/** Posting and quoting take a fee: from the balance, or an X-Cashu token (change in X-Cashu-Change). */
const FeeHeaders = z.object({
  "X-Token": z.string().optional().meta({ description: "account key (or Authorization: Bearer)" }),
  "X-Cashu": z
    .string()
    .optional()
    .meta({ description: "a cashu token paying the fee instead of the balance" }),
});
const IdentityHeaders = z.object({
  "X-Token": z.string().optional().meta({ description: "account key (or Authorization: Bearer)" }),
});
const partyErrors = {
  401: "missing or unknown key",
  403: "not a party allowed to do this",
  404: "no such task or quote",
  409: "not allowed in the task's current state",
};

export const marketRoutes: RouteGroup = {
  name: "market",
  description:
    "402ai's task marketplace: buyers post tasks with a sat budget, workers quote, the accepted price is held in escrow until the buyer confirms the delivery",
  errorSchema: ErrorBodySchema,
  routes: [
    {
      method: "get",
      path: "/v1/market/info",
      summary: "Fees (USD and today's sats), review window and delivery size limit",
      responses: okJson("market parameters", MarketInfoSchema),
    },
    {
      method: "get",
      path: "/v1/market/tasks",
      summary: "Tasks, newest first (filter by state)",
      query: ListTasksQuerySchema,
      responses: okJson("a page of tasks", TaskListResponseSchema),
      errors: { 400: "malformed query" },
    },
    {
      method: "post",
      path: "/v1/market/tasks",
      summary: "Post a task with a budget and deadline (pays the posting fee)",
      security: [...key, "cashu"],
      headers: FeeHeaders,
      body: CreateTaskRequestSchema,
      responses: createdJson("the task and the fee paid", CreateTaskResponseSchema),
      errors: { 400: "malformed body", 401: "missing or unknown key", 402: "balance or token short" },
    },
    {
      method: "get",
      path: "/v1/market/tasks/:id",
      summary: "One task; with a key the caller also sees their quotes and the delivery's metadata",
      headers: IdentityHeaders,
      responses: okJson("the task", TaskViewSchema),
      errors: { 401: "unknown key", 404: "no such task" },
    },
    {
      method: "post",
      path: "/v1/market/tasks/:id/quotes",
      summary: "Quote a price for a task (pays the quoting fee)",
      security: [...key, "cashu"],
      headers: FeeHeaders,
      body: QuoteRequestSchema,
      responses: createdJson("the quote and the fee paid", QuoteResponseSchema),
      errors: { 400: "malformed body", 402: "balance or token short", ...partyErrors },
    },
    {
      method: "patch",
      path: "/v1/market/tasks/:id/quotes/:qid",
      summary: "Edit a pending quote (its author only)",
      security: [...key],
      body: EditQuoteRequestSchema,
      responses: okJson("the quote", QuoteViewSchema),
      errors: { 400: "malformed body", ...partyErrors },
    },
    {
      method: "post",
      path: "/v1/market/tasks/:id/quotes/:qid/accept",
      summary:
        "Accept a quote: its price moves from the buyer's balance into escrow (buyer only, once per task)",
      security: [...key],
      body: AcceptRequestSchema,
      responses: okJson("the task, escrowed", TaskViewSchema),
      errors: { 400: "malformed body", 402: "balance short", ...partyErrors },
    },
    {
      method: "get",
      path: "/v1/market/tasks/:id/quotes/:qid/messages",
      summary: "The messages between the buyer and the quote's author (those two only)",
      security: [...key],
      responses: okJson("the thread", MessagesResponseSchema),
      errors: partyErrors,
    },
    {
      method: "post",
      path: "/v1/market/tasks/:id/quotes/:qid/messages",
      summary: "Write to the other party of a quote",
      security: [...key],
      body: MessageRequestSchema,
      responses: createdJson("the message", MessageViewSchema),
      errors: { 400: "malformed body", ...partyErrors },
    },
    {
      method: "post",
      path: "/v1/market/tasks/:id/deliver",
      summary: "Deliver the work as a file (the accepted worker only; size-limited, hashed)",
      security: [...key],
      body: DeliverRequestSchema,
      responses: okJson("the task, delivered", TaskViewSchema),
      errors: { 400: "malformed body", 413: "delivery too large", ...partyErrors },
    },
    {
      method: "get",
      path: "/v1/market/tasks/:id/delivery",
      summary: "Download the delivery (buyer and worker only)",
      security: [...key],
      responses: okJson("the file, base64", DeliverySchema),
      errors: partyErrors,
    },
    {
      method: "post",
      path: "/v1/market/tasks/:id/confirm",
      summary: "Confirm the delivery: the escrow goes to the worker (buyer only)",
      security: [...key],
      responses: okJson("the task, paid", TaskViewSchema),
      errors: partyErrors,
    },
    {
      method: "post",
      path: "/v1/market/tasks/:id/dispute",
      summary: "Dispute a delivery: stops the automatic release at the end of the review window",
      security: [...key],
      body: DisputeRequestSchema,
      responses: okJson("the task, disputed", TaskViewSchema),
      errors: { 400: "malformed body", ...partyErrors },
    },
    {
      method: "post",
      path: "/v1/market/tasks/:id/cancel",
      summary: "Cancel: the buyer before delivery, or the worker (the escrow goes back to the buyer)",
      security: [...key],
      responses: okJson("the task, cancelled", TaskViewSchema),
      errors: partyErrors,
    },
    {
      method: "post",
      path: "/v1/market/collect",
      summary: "Pay earnings out to a Lightning invoice through the mint's melt (202 while it is in flight)",
      security: [...key],
      body: CollectRequestSchema,
      responses: {
        ...okJson("paid", CollectResponseSchema),
        202: { description: "the payment is still in flight", schema: CollectResponseSchema },
      },
      errors: {
        400: "malformed body",
        401: "missing or unknown key",
        402: "balance short",
        403: "child keys cannot collect",
        502: "the payment failed",
      },
    },
    {
      method: "get",
      path: "/v1/market/me",
      summary: "The caller's balance, tasks, quotes and collects",
      security: [...key],
      responses: okJson("the caller's market", MeResponseSchema),
      errors: { 401: "missing or unknown key" },
    },
  ],
};
