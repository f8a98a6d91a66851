/**
 * One paid prompt: the exact max cost leaves the wallet as an X-Cashu token (recorded in flight
 * first), the answer streams back, and the change — `cashu_change` event, or the `X-Cashu-Change`
 * header when the gateway refused before streaming — is saved before anything is shown.
 */
import { type ChatMessage, failure } from "./api.js";
import { sseEvents } from "./stream.js";
import type { BrowserWallet } from "./wallet.js";

export interface PromptResult {
  text: string;
  chargedSats?: number;
  changeSats: number;
  error?: string;
}

interface Chunk {
  type?: string;
  token?: string;
  change_sats?: number;
  choices?: { delta?: { content?: string } }[];
  usage?: { cost?: { sats?: number; change_sats?: number } };
  error?: { message?: string };
}

export async function sendPrompt(
  wallet: BrowserWallet,
  req: { model: string; messages: ChatMessage[]; maxTokens: number; paySats: number },
  onText: (textSoFar: string) => void,
): Promise<PromptResult> {
  const requestId = crypto.randomUUID();
  const token = await wallet.payFor(req.paySats, requestId);
  let res: Response;
  try {
    res = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: { "content-type": "application/json", "x-cashu": token, "x-owlrun-request-id": requestId },
      body: JSON.stringify({
        model: req.model,
        messages: req.messages,
        max_tokens: req.maxTokens,
        stream: true,
      }),
    });
  } catch (err) {
    // Never reached the gateway (the token is unspent) or lost on the way (the change is stored there).
    await wallet.recoverInFlight();
    throw new Error(`the gateway could not be reached: ${(err as Error).message}`, { cause: err });
  }
  if (!res.ok || !res.body) {
    // Refused before streaming: the whole token comes back in X-Cashu-Change (or was never claimed).
    const refund = res.headers.get("x-cashu-change") ?? undefined;
    const err = await failure(res);
    if (refund) wallet.settled(requestId, refund);
    // No refund header: the mint says whether the token was claimed (else it is still ours).
    else await wallet.recoverInFlight();
    return { text: "", changeSats: refund ? req.paySats : 0, error: err.message };
  }
  let text = "";
  let charged: number | undefined;
  let changeSats = 0;
  let error: string | undefined;
  let changeToken: string | undefined;
  let changeDue: number | undefined;
  try {
    for await (const event of sseEvents(res.body)) {
      if (event === "[DONE]" || typeof event !== "object" || event === null) continue;
      const chunk = event as Chunk;
      if (chunk.type === "cashu_change") {
        changeToken = chunk.token || undefined;
        changeSats = chunk.change_sats ?? 0;
        // Saved before anything else is rendered; the same event also carries the usage.
        wallet.settled(requestId, changeToken);
      }
      if (chunk.error) error = chunk.error.message ?? "the provider failed";
      if (chunk.usage?.cost?.sats !== undefined) {
        charged = chunk.usage.cost.sats;
        changeDue = chunk.usage.cost.change_sats;
      }
      const delta = (chunk.choices ?? []).map((c) => c.delta?.content ?? "").join("");
      if (delta) {
        text += delta;
        onText(text);
      }
    }
  } catch (err) {
    error = `the answer was cut off: ${(err as Error).message}`;
  }
  if (!changeToken) {
    if (charged !== undefined && !changeDue) {
      wallet.settled(requestId); // all of it was charged
    } else {
      // The stream broke before its change: the gateway keeps it under our request id.
      await wallet.recoverInFlight();
      changeSats = changeDue ?? 0;
    }
  }
  return { text, chargedSats: charged, changeSats, error };
}
