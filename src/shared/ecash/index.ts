export * from "./errors.js";
export * from "./store.js";
export * from "./pool.js";
export * from "./tokens.js";
export * from "./wallet.js";
export * from "./native-outputs.js";
export * from "./locks.js";
export * from "./transport.js";
