/**
 * The gateway's HTTP app: every route group in the order it must be mounted (aliases first, the
 * routes that parse their own bodies before the JSON parser, the JSON 404 and error shape last).
 */
import express, { type Express, type Request, type Response } from "express";
import type { Logger } from "../src/shared/index.js";
import type { RouteGroup } from "../src/shared/discovery/index.js";
import { accountRouter, accountRoutes } from "./api/accounts.js";
import { seedAliases } from "./api/seed-paths.js";
import { broadcastRouter, broadcastRoutes } from "./api/broadcasts.js";
import { routstrRouter, routstrRoutes } from "./api/routstr.js";
import { chatHandler, chatRoutes } from "./api/chat.js";
import { discoveryRouter, discoveryRoutes } from "./api/discovery.js";
import { ApiError, errorMiddleware } from "./api/errors.js";
import type { JobLog } from "./api/joblog.js";
import { ollamaRouter, ollamaRoutes } from "./api/ollama.js";
import { ModelAliases } from "./api/aliases.js";
import { anthropicRouter, anthropicRoutes } from "./api/anthropic/index.js";
import { responsesHandler, responsesRoutes } from "./api/responses/index.js";
import { embeddingsRouter, embeddingsRoutes, ollamaEmbedRoutes } from "./api/embeddings/index.js";
import { ollamaBodyParser, ollamaFallback, ollamaMetaRouter, ollamaMetaRoutes } from "./api/ollama-meta.js";
import { providerApiRoutes, providerRouter } from "./api/providers.js";
import { payRouter, payRoutes } from "./api/pay.js";
import type { PaymentMethod, Paywall } from "./api/paywall.js";
import { publicRouter, publicRoutes } from "./api/public.js";
import { defaultWebDir, webRouter, webRoutes } from "./api/web.js";
import { adminTokenOf, type BroadcastStore } from "./broadcasts/index.js";
import type { Ledger } from "./ledger/index.js";
import { type Market, marketRouter, marketRoutes } from "./market/index.js";
import type { Oracle } from "./oracle/index.js";
import type { AccountPayments } from "./payments/account-payments.js";
import type { OneShotRegistry } from "./payments/oneshot.js";
import type { ProviderPayouts } from "./payments/payouts.js";
import type { PriceTable } from "./payments/pricing.js";
import type { GatewayWallet } from "./payments/wallet.js";
import type { CashuPayments } from "./payments/xcashu.js";
import { nodeRoutes, type Routing, type SignupLimiter } from "./routing/index.js";
import type { GatewayOptions } from "./options.js";

export const MAX_BODY_BYTES = 1024 * 1024;

/** What the routes are served from: the stores and services `createGateway` opened. */
export interface AppParts {
  opts: GatewayOptions;
  log: Logger;
  ledger: Ledger;
  wallet: GatewayWallet;
  routing: Routing;
  payments: CashuPayments;
  accounts: AccountPayments;
  accountSignups: SignupLimiter;
  prices: PriceTable;
  oracle: Oracle;
  providerSharePct: number;
  paywall: Paywall;
  methods: ReadonlySet<PaymentMethod>;
  jobs: JobLog;
  live: Set<string>;
  oneShots: OneShotRegistry;
  payouts: ProviderPayouts;
  market: Market;
  broadcasts: BroadcastStore;
}

export interface GatewayApp {
  app: Express;
  /** every route this gateway's server answers, as documented in /openapi.json */
  routeGroups(): RouteGroup[];
  /** told the listening URL (the discovery documents use it unless publicUrl is set) */
  listening(url: string): void;
}

/** Wraps an async handler so thrown errors reach the error middleware (express 5 does this too). */
const handle =
  (fn: (req: Request, res: Response) => Promise<void>) =>
  (req: Request, res: Response, next: (e?: unknown) => void) =>
    fn(req, res).catch(next);

export async function assembleApp(p: AppParts): Promise<GatewayApp> {
  const { opts, log, ledger, wallet, routing, payments, accounts, prices, oracle, paywall, methods } = p;
  const { jobs, oneShots, payouts, market } = p;
  const share = p.providerSharePct;
  const deps = {
    dispatcher: routing.dispatcher,
    payments,
    accounts,
    prices,
    oracle,
    providerSharePct: share,
    paywall,
    log,
    jobs,
    live: p.live,
    aliases: opts.modelAliases ?? new ModelAliases(),
    onSettled: (jobId: string, tokens: number, providerMsat: number) => {
      routing.jobComplete(jobId, {
        tokens,
        earnedUsd: (providerMsat / 1e11) * (oracle.maybePricingRate() ?? 0),
      });
    },
  };
  const app = express();
  app.disable("x-powered-by");
  // First: /api/v1/… (402ai, BSVAPI) is rewritten to the /v1 route it names.
  const ownGroups = [
    chatRoutes,
    accountRoutes,
    routstrRoutes,
    payRoutes,
    marketRoutes,
    ollamaRoutes,
    responsesRoutes,
    embeddingsRoutes,
    anthropicRoutes,
    ollamaMetaRoutes,
    ollamaEmbedRoutes,
    providerApiRoutes,
    publicRoutes,
    broadcastRoutes,
    nodeRoutes,
    discoveryRoutes,
    webRoutes,
  ];
  const aliases = seedAliases(ownGroups);
  app.use(aliases.router);
  // Before the JSON parser: admin routes check their token before reading a (small) body.
  app.use(
    broadcastRouter({ store: p.broadcasts, adminToken: await adminTokenOf(opts.dataDir, opts.database) }),
  );
  // Before the JSON parser: the market and provider routes parse their own bodies.
  // Both check the caller's key before reading a body: deliveries are megabytes, registration is the
  // providers' own door.
  app.use(
    marketRouter({
      market,
      accounts,
      maxBodyBytes: MAX_BODY_BYTES,
      ...(methods.has("l402") ? { l402: paywall.l402 } : {}),
    }),
  );
  app.use(routing.router);
  // Before the JSON parser too: Anthropic's routes answer even a malformed body in Anthropic's shape.
  app.use(anthropicRouter(deps, MAX_BODY_BYTES));
  app.use(express.json({ limit: MAX_BODY_BYTES }));
  app.use(ollamaBodyParser(MAX_BODY_BYTES));
  app.post("/v1/chat/completions", handle(chatHandler("chat", deps)));
  app.post("/v1/completions", handle(chatHandler("completions", deps)));
  app.post("/v1/responses", handle(responsesHandler(deps)));
  app.use(ollamaRouter(deps));
  app.use(ollamaMetaRouter(deps));
  app.use(embeddingsRouter(deps));
  app.use(accountRouter({ accounts, ledger, wallet, signups: p.accountSignups }));
  app.use(routstrRouter({ accounts, ledger, wallet, claims: oneShots }));
  app.use(payRouter({ accounts, ledger, wallet, store: oneShots, prices, oracle, paywall }));
  app.use(providerRouter({ ledger, wallet, routing, payouts, oracle }));
  let listeningUrl: string | undefined;
  const routeGroups = () => [...ownGroups, aliases.group, ...(opts.mountedRoutes ?? [])];
  app.use(
    discoveryRouter({
      groups: routeGroups,
      baseUrl: (req) =>
        (opts.publicUrl ?? listeningUrl ?? `${req.protocol}://${req.get("host")}`).replace(/\/+$/, ""),
      model: () => routing.dispatcher.models()[0]?.model,
      mintUrl: () => wallet.trustedMints[0],
      mcpServerCard: opts.mcpServerCard,
    }),
  );
  app.use(
    publicRouter({
      dispatcher: routing.dispatcher,
      ledger,
      prices,
      oracle,
      wallet,
      providerSharePct: share,
      jobs,
      paymentMethods: [...methods],
      aliases: deps.aliases,
      defaultModel: opts.defaultModel,
    }),
  );
  app.use(webRouter({ dir: opts.webDir ?? defaultWebDir(), mints: () => wallet.trustedMints }));
  app.use(ollamaFallback(log));
  app.use((req, _res, next) =>
    next(
      // 402ai's base also names image, audio and video routes: say why they are missing here.
      /^\/(api\/)?v1\/(images|audio|video)\//.test(req.path)
        ? new ApiError(
            404,
            "not_found",
            `no route ${req.method} ${req.path}: this gateway serves text and embedding models only (no image, audio or video generation)`,
          )
        : new ApiError(404, "not_found", `no route ${req.method} ${req.path}`),
    ),
  );
  app.use(errorMiddleware(log));
  return {
    app,
    routeGroups,
    listening(url) {
      listeningUrl = url;
    },
  };
}
