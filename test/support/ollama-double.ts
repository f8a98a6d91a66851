/**
 * A small Ollama stand-in on loopback speaking the real API (`/api/version`, `/api/tags`, streaming
 * NDJSON `/api/chat` and `/api/generate`): what a provider finds when the user runs Ollama.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import { listen } from "../../src/shared/index.js";

export interface OllamaDouble {
  url: string;
  close(): Promise<void>;
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  let body = "";
  for await (const chunk of req) body += chunk;
  return body ? (JSON.parse(body) as Record<string, unknown>) : {};
}

/** Serves `models`; every answer streams `answer` word by word. */
export async function startOllamaDouble(
  models: string[],
  answer = "Hello from the Ollama double.",
): Promise<OllamaDouble> {
  const server: Server = createServer(async (req, res) => {
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (req.url === "/api/version") return json(200, { version: "0.12.0" });
    if (req.url === "/api/tags")
      return json(200, {
        models: models.map((name) => ({ name, model: name, size: 1, digest: "0", details: {} })),
      });
    if (req.method === "POST" && (req.url === "/api/chat" || req.url === "/api/generate")) {
      const body = await readJson(req);
      if (!models.includes(String(body.model)))
        return json(404, { error: `model "${body.model}" not found` });
      const chat = req.url === "/api/chat";
      res.writeHead(200, { "content-type": "application/x-ndjson" });
      const words = answer.split(/(?<= )/);
      for (const w of words) {
        const part = chat ? { message: { role: "assistant", content: w } } : { response: w };
        res.write(
          `${JSON.stringify({ model: body.model, created_at: new Date().toISOString(), ...part, done: false })}\n`,
        );
      }
      const last = chat ? { message: { role: "assistant", content: "" } } : { response: "" };
      res.end(
        `${JSON.stringify({ model: body.model, ...last, done: true, done_reason: "stop", prompt_eval_count: 8, eval_count: words.length })}\n`,
      );
      return;
    }
    json(404, { error: "not found" });
  });
  const url = await listen(server, "127.0.0.1", 0);
  return {
    url,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
