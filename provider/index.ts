/**
 * The Owlrun provider node (`owlrun-mcp provider`), the only door into `provider/`. It never
 * imports the gateway: it talks to one only over the wire (shared/protocols/owlrun-node.md).
 * node-llama-cpp is imported only when the embedded backend is started.
 */
export { PROVIDER_FLAGS, PROVIDER_USAGE, runProviderCommand } from "./command.js";
export {
  chooseBackend,
  DEFAULT_OLLAMA_URL,
  type ProviderOptions,
  type RunningProvider,
  startProvider,
  TEST_MODEL_CONTEXT,
  summarize,
} from "./start.js";
export { backoffDelay, type LastPayout, type NodeOptions, type NodeStats, ProviderNode } from "./node.js";
export { loadIdentity, type Identity } from "./identity.js";
export { MAX_CHUNK_BYTES, parseGatewayFrame, splitUtf8 } from "./protocol.js";
export type {
  Backend,
  ChatChunk,
  ChatRequest,
  Chunk,
  CompletionChunk,
  CompletionRequest,
  Usage,
} from "./backends/types.js";
export {
  createEmbeddedBackend,
  type EmbeddedBackend,
  EmbeddedUnavailableError,
  modelIdForFile,
  refuseForcedTools,
} from "./backends/embedded.js";
export { createOllamaBackend, type OllamaBackend } from "./backends/ollama.js";
export { type Facade, startOllamaFacade } from "./facade.js";
export {
  ensureTestModels,
  RANDOM_MODEL_ID,
  randomModel,
  SCRIPTED_ANSWER,
  SCRIPTED_MODEL_ID,
  scriptedModel,
} from "./gguf/models.js";
