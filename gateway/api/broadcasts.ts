/**
 * `GET /v1/broadcasts` (Owlrun: system announcements) and the operator's admin routes to publish
 * and expire them, guarded by the admin token. Mounted before the JSON parser: the token is
 * checked before a body is read, and an admin body is small.
 */
import express, { type NextFunction, type Request, type Response, Router } from "express";
import * as z from "zod";
import { createdJson, okJson, type RouteGroup } from "../../src/shared/discovery/index.js";
import {
  BroadcastError,
  BroadcastSchema,
  type BroadcastStore,
  isAdminToken,
  PublishBroadcastSchema,
} from "../broadcasts/index.js";
import { ApiError, ErrorBodySchema, parseWith } from "./errors.js";

export const BroadcastsResponseSchema = z.object({ broadcasts: z.array(BroadcastSchema) });
export const ExpireResponseSchema = z.object({ id: z.string(), expired: z.literal(true) });

export function broadcastRouter(deps: { store: BroadcastStore; adminToken: string }): Router {
  const r = Router();
  const admin = (req: Request, _res: Response, next: NextFunction) => {
    const presented = /^Bearer\s+(\S+)$/i.exec(req.get("authorization") ?? "")?.[1];
    if (!isAdminToken(presented, deps.adminToken))
      return next(new ApiError(401, "invalid_key", "admin routes need Authorization: Bearer <admin token>"));
    next();
  };

  r.get("/v1/broadcasts", async (_req, res) => {
    res.json({ broadcasts: await deps.store.active() });
  });

  r.get("/v1/admin/broadcasts", admin, async (_req, res) => {
    res.json({ broadcasts: await deps.store.all() });
  });

  r.post("/v1/admin/broadcasts", admin, express.json({ limit: "16kb" }), async (req, res) => {
    const body = parseWith(PublishBroadcastSchema, req.body);
    try {
      res.status(201).json(await deps.store.publish(body));
    } catch (err) {
      if (err instanceof BroadcastError) throw new ApiError(400, "invalid_request", err.message);
      throw err;
    }
  });

  r.delete("/v1/admin/broadcasts/:id", admin, async (req, res) => {
    const id = String(req.params.id);
    if (!(await deps.store.expire(id))) throw new ApiError(404, "not_found", "no live broadcast has that id");
    res.json({ id, expired: true });
  });

  return r;
}

const adminErrors = { 401: "missing or wrong admin token" };

export const broadcastRoutes: RouteGroup = {
  name: "broadcasts",
  description: "Operator announcements (Owlrun): read by anyone, published and expired by the operator",
  errorSchema: ErrorBodySchema,
  routes: [
    {
      method: "get",
      path: "/v1/broadcasts",
      summary: "Live operator broadcasts, newest first",
      responses: okJson("broadcasts", BroadcastsResponseSchema),
    },
    {
      method: "get",
      path: "/v1/admin/broadcasts",
      summary: "Every broadcast, live or expired (admin)",
      security: ["admin"],
      responses: okJson("broadcasts", BroadcastsResponseSchema),
      errors: adminErrors,
    },
    {
      method: "post",
      path: "/v1/admin/broadcasts",
      summary: "Publish a broadcast, optionally expiring (admin)",
      security: ["admin"],
      body: PublishBroadcastSchema,
      responses: createdJson("the broadcast", BroadcastSchema),
      errors: {
        ...adminErrors,
        400: "malformed body, both expiries, or an expiry in the past",
        413: "body over 16 KiB",
      },
    },
    {
      method: "delete",
      path: "/v1/admin/broadcasts/:id",
      summary: "Expire a broadcast now (admin)",
      security: ["admin"],
      responses: okJson("expired", ExpireResponseSchema),
      errors: { ...adminErrors, 404: "no live broadcast has that id" },
    },
  ],
};
