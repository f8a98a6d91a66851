/**
 * NUT HTTP endpoints as an express router. Every body is parsed by its zod schema; every failure
 * answers in the NUT-00 error shape `{detail, code}` and changes nothing.
 */
import express, { type NextFunction, type Request, type Response, type Router } from "express";
import type * as z from "zod";
import type { RouteDoc, RouteGroup } from "../../src/shared/discovery/index.js";
import type { Logger } from "../../src/shared/index.js";
import { MintError, MintErrorCode } from "./errors.js";
import type { CashuMint } from "./mint.js";
import {
  CheckStateRequest,
  CheckStateResponse,
  KeysetsResponse,
  KeysResponse,
  MeltQuoteRequest,
  MeltQuoteResponse,
  MeltRequest,
  MintErrorBody,
  MintInfoResponse,
  MintQuoteRequest,
  MintQuoteResponse,
  MintRequest,
  RestoreRequest,
  RestoreResponse,
  SignaturesResponse,
  SwapRequest,
} from "./schemas.js";

export const MAX_BODY_BYTES = 512 * 1024;

function parse<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const result = schema.safeParse(body ?? {});
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue?.path.length ? `${issue.path.join(".")}: ` : "";
    throw new MintError(MintErrorCode.BadRequest, `Invalid request: ${where}${issue?.message ?? "bad body"}`);
  }
  return result.data;
}

type Handler = (req: Request) => unknown | Promise<unknown>;

function route(handler: Handler) {
  return (req: Request, res: Response, next: NextFunction) => {
    Promise.resolve()
      .then(() => handler(req))
      .then((body) => res.json(body))
      .catch(next);
  };
}

function errorHandler(log: Logger) {
  return (err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    if (err instanceof MintError) {
      res.status(err.status).json(err.toJSON());
      return;
    }
    const e = err as { type?: string; status?: number };
    if (e?.type === "entity.too.large") {
      res.status(413).json({
        detail: `Request body larger than ${MAX_BODY_BYTES} bytes.`,
        code: MintErrorCode.BadRequest,
      });
      return;
    }
    if (e?.type === "entity.parse.failed" || e?.type === "encoding.unsupported" || e?.status === 400) {
      res.status(400).json({ detail: "Malformed JSON body.", code: MintErrorCode.BadRequest });
      return;
    }
    log.error("unexpected mint error", { err: String((err as Error)?.stack ?? err) });
    res.status(500).json({ detail: "Internal mint error.", code: MintErrorCode.BadRequest });
  };
}

/** Wallets in browsers talk to mints directly: allow any origin, no credentials. */
function cors(req: Request, res: Response, next: NextFunction) {
  res.setHeader("Access-Control-Allow-Origin", "*");
  res.setHeader("Access-Control-Allow-Headers", "Content-Type");
  res.setHeader("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
  if (req.method === "OPTIONS") {
    res.status(204).end();
    return;
  }
  next();
}

const param = (req: Request, name: string) => String(req.params[name] ?? "");

const nut = (
  method: "get" | "post",
  path: string,
  summary: string,
  answer: z.ZodType,
  body?: z.ZodType,
): RouteDoc => ({
  method,
  path,
  summary,
  ...(body ? { body } : {}),
  responses: { 200: { description: summary, schema: answer } },
  errors: { 400: "bad request, spent or pending proofs, unknown quote (NUT-00 error code in `code`)" },
});

/** The NUT endpoints (Cashu protocol), for OpenAPI; `prefix` is where the router is mounted. */
export function mintRoutes(prefix = ""): RouteGroup {
  return {
    name: "mint",
    description: "The bundled Cashu mint (NUT-00..12, 14, 17, 19, 20; bolt11 only); NUT-00 error bodies",
    prefix,
    errorSchema: MintErrorBody,
    routes: [
      nut("get", "/v1/info", "NUT-06 mint info", MintInfoResponse),
      nut("get", "/v1/keys", "NUT-01 public keys of the active keysets", KeysResponse),
      nut("get", "/v1/keys/:id", "NUT-01 public keys of one keyset", KeysResponse),
      nut("get", "/v1/keysets", "NUT-02 all keysets and their fees", KeysetsResponse),
      nut("post", "/v1/swap", "NUT-03 swap proofs for new signatures", SignaturesResponse, SwapRequest),
      nut(
        "post",
        "/v1/mint/quote/bolt11",
        "NUT-04 mint quote (a Lightning invoice)",
        MintQuoteResponse,
        MintQuoteRequest,
      ),
      nut("get", "/v1/mint/quote/bolt11/:quote", "NUT-04 mint quote state", MintQuoteResponse),
      nut(
        "post",
        "/v1/mint/bolt11",
        "NUT-04 mint the ecash of a paid quote",
        SignaturesResponse,
        MintRequest,
      ),
      nut(
        "post",
        "/v1/melt/quote/bolt11",
        "NUT-05 melt quote (pay an invoice)",
        MeltQuoteResponse,
        MeltQuoteRequest,
      ),
      nut("get", "/v1/melt/quote/bolt11/:quote", "NUT-05 melt quote state", MeltQuoteResponse),
      nut(
        "post",
        "/v1/melt/bolt11",
        "NUT-05 pay the quote's invoice with proofs",
        MeltQuoteResponse,
        MeltRequest,
      ),
      nut("post", "/v1/checkstate", "NUT-07 proof states", CheckStateResponse, CheckStateRequest),
      nut(
        "post",
        "/v1/restore",
        "NUT-09 restore signatures from blinded messages",
        RestoreResponse,
        RestoreRequest,
      ),
      {
        ...nut("get", "/v1/ws", "NUT-17 WebSocket subscriptions", MintInfoResponse),
        websocket: true,
        responses: { 101: { description: "switching to the WebSocket protocol" } },
      },
    ],
  };
}

export function createMintRouter(mint: CashuMint): Router {
  const r = express.Router();
  r.use(cors);
  r.use(express.json({ limit: MAX_BODY_BYTES, strict: true, type: () => true }));

  r.get(
    "/v1/info",
    route(() => mint.info()),
  );
  r.get(
    "/v1/keys",
    route(() => mint.activeKeys()),
  );
  r.get(
    "/v1/keys/:id",
    route((req) => mint.keysFor(param(req, "id"))),
  );
  r.get(
    "/v1/keysets",
    route(() => mint.keysetList()),
  );
  r.post(
    "/v1/swap",
    route((req) => mint.swap(parse(SwapRequest, req.body))),
  );
  r.post(
    "/v1/mint/quote/bolt11",
    route((req) => mint.createMintQuote(parse(MintQuoteRequest, req.body))),
  );
  r.get(
    "/v1/mint/quote/bolt11/:quote",
    route((req) => mint.getMintQuote(param(req, "quote"))),
  );
  r.post(
    "/v1/mint/bolt11",
    route((req) => mint.mint(parse(MintRequest, req.body))),
  );
  r.post(
    "/v1/melt/quote/bolt11",
    route((req) => mint.createMeltQuote(parse(MeltQuoteRequest, req.body))),
  );
  r.get(
    "/v1/melt/quote/bolt11/:quote",
    route((req) => mint.getMeltQuote(param(req, "quote"))),
  );
  r.post(
    "/v1/melt/bolt11",
    route((req) => mint.melt(parse(MeltRequest, req.body))),
  );
  r.post(
    "/v1/checkstate",
    route((req) => mint.checkState(parse(CheckStateRequest, req.body).Ys)),
  );
  r.post(
    "/v1/restore",
    route((req) => mint.restore(parse(RestoreRequest, req.body).outputs)),
  );

  r.all(/^\/v1\/(mint|melt)\/(quote\/)?[^/]+/, () => {
    throw new MintError(MintErrorCode.BadRequest, "Payment method not supported: only bolt11.", 400);
  });
  r.use((req, res) => {
    res
      .status(404)
      .json({ detail: `No such endpoint: ${req.method} ${req.path}`, code: MintErrorCode.BadRequest });
  });
  r.use(errorHandler(mint.log));
  return r;
}
