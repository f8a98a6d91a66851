/**
 * Every route an express 5 app answers, read from its router stack (sub-routers mounted with
 * `app.use(path?, router)` included). Routes whose path is a RegExp come back apart: OpenAPI cannot
 * name them, so a test decides what they may be.
 */
import type { Express } from "express";

interface Layer {
  name: string;
  rawPath?: string | RegExp | (string | RegExp)[];
  route?: { path: string | RegExp; methods: Record<string, boolean> };
  handle: { stack?: Layer[] };
}

export interface WalkedRoutes {
  /** `METHOD /path` with express `:params` */
  routes: string[];
  /** routes registered with a RegExp path, as `METHOD /regexp/` */
  regexRoutes: string[];
}

export function walkRoutes(app: Express): WalkedRoutes {
  const out: WalkedRoutes = { routes: [], regexRoutes: [] };
  const visit = (stack: Layer[], prefix: string) => {
    for (const layer of stack) {
      if (layer.route) {
        const methods = Object.keys(layer.route.methods).filter((m) => m !== "_all");
        const all = layer.route.methods._all;
        for (const m of all ? ["ALL"] : methods.map((x) => x.toUpperCase())) {
          if (layer.route.path instanceof RegExp) out.regexRoutes.push(`${m} ${prefix}${layer.route.path}`);
          else out.routes.push(`${m} ${prefix}${layer.route.path}`);
        }
      } else if (layer.handle.stack) {
        const raw = layer.rawPath;
        if (typeof raw !== "string") throw new Error(`cannot walk a router mounted at ${String(raw)}`);
        visit(layer.handle.stack, raw === "/" ? prefix : prefix + raw);
      } else if (layer.name === "mounted_app") {
        // An express app inside another hides its stack: mount `app.router` instead.
        throw new Error(`a mounted express app under ${prefix || "/"} cannot be walked; mount its .router`);
      }
    }
  };
  visit((app as unknown as { router: { stack: Layer[] } }).router.stack, "");
  return out;
}
