/**
 * Owlrun Chat, the browser page, served at `/` from the bundle `npm run build` writes to dist/web,
 * and the top-up page at `/topup`.
 * A strict Content-Security-Policy allows this origin only (plus the trusted mints the wallet in the
 * page talks to), which also proves the page loads no external script, font or style.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import express, { type Response, Router } from "express";
import * as z from "zod";
import type { RouteGroup } from "../../src/shared/discovery/index.js";
import { ApiError, ErrorBodySchema } from "./errors.js";

/**
 * Where the bundle is: next to the compiled gateway (dist/gateway/api → dist/web), or, when the
 * gateway runs from its TypeScript sources, in the repo's dist/web.
 */
export function defaultWebDir(): string {
  const compiled = resolve(import.meta.dirname, "../../web");
  return existsSync(resolve(compiled, "app.js")) ? compiled : resolve(import.meta.dirname, "../../dist/web");
}

/** http(s) and ws(s) origins of the mints, for connect-src (REST and the NUT-17 websocket). */
function mintOrigins(mints: string[]): string[] {
  return mints.flatMap((m) => {
    try {
      const u = new URL(m);
      const ws = u.protocol === "https:" ? "wss:" : "ws:";
      return [u.origin, `${ws}//${u.host}`];
    } catch {
      return [];
    }
  });
}

export function contentSecurityPolicy(mints: string[]): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "font-src 'self'",
    `connect-src 'self' ${mintOrigins(mints).join(" ")}`.trim(),
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join("; ");
}

export function webRouter(deps: { dir: string; mints: () => string[] }): Router {
  const r = Router();
  const built = existsSync(resolve(deps.dir, "index.html"));
  const headers = (res: Response) => {
    res.setHeader("Content-Security-Policy", contentSecurityPolicy(deps.mints()));
    res.setHeader("X-Content-Type-Options", "nosniff");
    res.setHeader("Referrer-Policy", "no-referrer");
  };
  if (!built) {
    for (const page of ["/", "/topup"])
      r.get(page, () => {
        throw new ApiError(
          404,
          "not_found",
          `the web pages are not built (no ${deps.dir}): run npm run build`,
        );
      });
    return r;
  }
  // 402ai's /topup page for people: invoice, QR, and the key shown once when paid.
  r.get("/topup", (_req, res) => {
    headers(res);
    res.sendFile(resolve(deps.dir, "topup.html"));
  });
  r.use(
    express.static(deps.dir, {
      index: "index.html",
      redirect: false,
      fallthrough: true,
      setHeaders: headers,
    }),
  );
  return r;
}

/** The pages for people (the chat at `/` is served as static files; the top-up page has a route). */
export const webRoutes: RouteGroup = {
  name: "web",
  description: "Pages for people: the top-up page (402ai's /topup)",
  errorSchema: ErrorBodySchema,
  routes: [
    {
      method: "get",
      path: "/topup",
      summary: "The top-up page: a Lightning invoice and its QR, then the prepaid key, shown once",
      responses: { 200: { description: "the page", schema: z.string(), contentType: "text/html" } },
      errors: { 404: "the web pages are not built" },
    },
  ],
};
