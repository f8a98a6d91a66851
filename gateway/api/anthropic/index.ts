/** Anthropic's Messages API on the gateway: the router and its documented routes. */
export { anthropicRouter, anthropicRoutes } from "./route.js";
export { anthropicError } from "./translate.js";
