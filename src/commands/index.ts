/** The composition root's commands that wire the mint, gateway, provider and MCP server together. */
export { runDevnet } from "./devnet.js";
export { runGateway } from "./gateway.js";
export { runMint } from "./mint.js";
