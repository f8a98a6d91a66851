/** Discovery documents built from route records: OpenAPI 3.1, llms.txt, the static `.well-known/` parts. */
export { type LlmsDocument, type LlmsLink, renderLlmsTxt } from "./llms.js";
export { buildOpenApi, type OpenApiInfo } from "./openapi.js";
export {
  createdJson,
  documentedRoutes,
  ErrorBodySchema,
  type HttpMethod,
  okJson,
  openApiPath,
  type ResponseDoc,
  type RouteDoc,
  type RouteGroup,
  type Security,
} from "./routes.js";
export { OPEN_CORS, WELL_KNOWN_DIR, wellKnownJson } from "./static.js";
