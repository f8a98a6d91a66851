/**
 * The market's routes under /v1/market (402ai's ai-for-hire API). Identity is an account key
 * (`rc_…`, `sk-…`, or a cashu token used as the key) in `X-Token` or `Authorization: Bearer`;
 * posting a task and quoting are paid from the balance or with an `X-Cashu` token (change in
 * `X-Cashu-Change`). The router parses its own JSON bodies so deliveries may be larger than the
 * gateway's usual body limit: mount it before the gateway's JSON parser.
 */
import express, { type Request, type Response, Router } from "express";
import type * as z from "zod";
import type { AccountPayments } from "../payments/account-payments.js";
import type { AccountRow } from "../payments/accounts.js";
import { PaymentError } from "../payments/errors.js";
import type { CashuPayer, Market } from "./market.js";
import {
  AcceptRequestSchema,
  CollectRequestSchema,
  CreateTaskRequestSchema,
  DeliverRequestSchema,
  DisputeRequestSchema,
  EditQuoteRequestSchema,
  ListTasksQuerySchema,
  MessageRequestSchema,
  QuoteRequestSchema,
} from "./schemas.js";

function parse<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const r = schema.safeParse(body ?? {});
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new PaymentError(
      "invalid_request",
      `invalid request: ${issue?.path.join(".") ?? ""} ${issue?.message ?? ""}`.trim(),
      400,
    );
  }
  return r.data;
}

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
  r.post("/v1/market/tasks/:id/deliver", express.json({ limit: deliverLimit }));
  r.use("/v1/market", express.json({ limit: deps.maxBodyBytes }));

  const keyOf = (req: Request) =>
    req.get("x-token")?.trim() || /^Bearer\s+(.+)$/i.exec(req.get("authorization") ?? "")?.[1]?.trim();

  /** The caller's account (required), rate limited. */
  const auth = async (req: Request): Promise<AccountRow> => {
    const key = keyOf(req);
    if (!key)
      throw new PaymentError(
        "invalid_key",
        "send your account key as X-Token: <key> or Authorization: Bearer <key> (get one with POST /v1/auth/register)",
        401,
      );
    const account = await deps.accounts.authenticate(key);
    market.rateLimit(account);
    return account;
  };

  /** An X-Cashu token paying this request's fee; its change goes out in X-Cashu-Change. */
  const cashuOf = (req: Request, res: Response): CashuPayer | undefined => {
    const token = req.get("x-cashu")?.trim();
    return token ? { token, onChange: (change) => res.setHeader("X-Cashu-Change", change) } : undefined;
  };

  const id = (req: Request, name = "id") => String(req.params[name]);

  r.get("/v1/market/info", (_req, res) => {
    res.json(market.info());
  });

  r.get("/v1/market/tasks", (req, res) => {
    const q = parse(ListTasksQuerySchema, req.query);
    res.json({ tasks: market.listTasks(q), limit: q.limit, offset: q.offset });
  });

  r.post("/v1/market/tasks", async (req, res) => {
    const caller = await auth(req);
    const body = parse(CreateTaskRequestSchema, req.body);
    res.status(201).json(await market.createTask(caller, body, cashuOf(req, res)));
  });

  /** Public; with a key, the caller also sees their part (quotes, delivery). */
  r.get("/v1/market/tasks/:id", async (req, res) => {
    const caller = keyOf(req) ? await auth(req) : undefined;
    res.json(market.getTask(id(req), caller));
  });

  r.post("/v1/market/tasks/:id/quotes", async (req, res) => {
    const caller = await auth(req);
    const body = parse(QuoteRequestSchema, req.body);
    res.status(201).json(await market.submitQuote(caller, id(req), body, cashuOf(req, res)));
  });

  r.patch("/v1/market/tasks/:id/quotes/:qid", async (req, res) => {
    const caller = await auth(req);
    res.json(market.editQuote(caller, id(req), id(req, "qid"), parse(EditQuoteRequestSchema, req.body)));
  });

  r.post("/v1/market/tasks/:id/quotes/:qid/accept", async (req, res) => {
    const caller = await auth(req);
    const { price_sats } = parse(AcceptRequestSchema, req.body);
    res.json(await market.accept(caller, id(req), id(req, "qid"), price_sats));
  });

  r.get("/v1/market/tasks/:id/quotes/:qid/messages", async (req, res) => {
    const caller = await auth(req);
    res.json(market.messages(caller, id(req), id(req, "qid")));
  });

  r.post("/v1/market/tasks/:id/quotes/:qid/messages", async (req, res) => {
    const caller = await auth(req);
    const { body } = parse(MessageRequestSchema, req.body);
    res.status(201).json(market.sendMessage(caller, id(req), id(req, "qid"), body));
  });

  r.post("/v1/market/tasks/:id/deliver", async (req, res) => {
    const caller = await auth(req);
    res.json(market.deliver(caller, id(req), parse(DeliverRequestSchema, req.body)));
  });

  r.get("/v1/market/tasks/:id/delivery", async (req, res) => {
    const caller = await auth(req);
    res.json(market.delivery(caller, id(req)));
  });

  r.post("/v1/market/tasks/:id/confirm", async (req, res) => {
    const caller = await auth(req);
    res.json(await market.confirm(caller, id(req)));
  });

  r.post("/v1/market/tasks/:id/dispute", async (req, res) => {
    const caller = await auth(req);
    res.json(market.dispute(caller, id(req), parse(DisputeRequestSchema, req.body).reason));
  });

  r.post("/v1/market/tasks/:id/cancel", async (req, res) => {
    const caller = await auth(req);
    res.json(await market.cancel(caller, id(req)));
  });

  r.post("/v1/market/collect", async (req, res) => {
    const caller = await auth(req);
    const out = await market.collect(caller, parse(CollectRequestSchema, req.body));
    res.status(out.state === "paid" ? 200 : 202).json(out);
  });

  r.get("/v1/market/me", async (req, res) => {
    res.json(await market.me(await auth(req)));
  });

  return r;
}
