/**
 * The seed paths under `/api/v1` (402ai, BSVAPI) as aliases of the `/v1` routes: the same
 * handlers, listed in OpenAPI. 402ai's marketplace lives at `/api/v1/ai-for-hire/…`, ours at
 * `/v1/market/…`. An alias route rewrites the URL and lets the router carry on to the real one.
 */
import { type Request, type Response, Router } from "express";
import type { RouteDoc, RouteGroup } from "../../src/shared/discovery/index.js";
import { ErrorBodySchema } from "./errors.js";

/** `/v1` paths (and path prefixes, ending in `/`) that the seeds name under `/api/v1`. */
const ALIASED = [
  "/v1/chat/completions",
  "/v1/completions",
  "/v1/responses",
  "/v1/embeddings",
  "/v1/models",
  "/v1/price",
  "/v1/topup",
  "/v1/topup/claim",
  "/v1/market/",
];

/** `/v1/market/…` → `/api/v1/ai-for-hire/…`, `/v1/…` → `/api/v1/…` */
export function aliasPath(path: string): string {
  return path.startsWith("/v1/market/")
    ? `/api/v1/ai-for-hire/${path.slice("/v1/market/".length)}`
    : `/api${path}`;
}

/** The inverse, on a request URL (query kept). */
function canonicalUrl(url: string): string {
  return url.startsWith("/api/v1/ai-for-hire/")
    ? `/v1/market/${url.slice("/api/v1/ai-for-hire/".length)}`
    : url.slice("/api".length);
}

const aliased = (path: string) => ALIASED.some((a) => (a.endsWith("/") ? path.startsWith(a) : path === a));

/** The alias routes of `groups`, as one documented group and the router that serves them. */
export function seedAliases(groups: RouteGroup[]): { group: RouteGroup; router: Router } {
  const routes: RouteDoc[] = groups.flatMap((g) =>
    g.routes
      .filter((r) => !g.prefix && !r.websocket && aliased(r.path))
      .map((r) => ({
        ...r,
        path: aliasPath(r.path),
        summary: `${r.summary} (alias of ${r.path})`,
      })),
  );
  const router = Router();
  const rewrite = (req: Request, _res: Response, next: () => void) => {
    req.url = canonicalUrl(req.url);
    next();
  };
  for (const r of routes) router[r.method](r.path, rewrite);
  return {
    group: {
      name: "seed-aliases",
      description: "402ai and BSVAPI paths: /api/v1/… and /api/v1/ai-for-hire/… serve the /v1 routes",
      errorSchema: ErrorBodySchema,
      routes,
    },
    router,
  };
}
