/**
 * The /topup page: a Lightning invoice for a prepaid key (402ai's top-up, `POST /v1/topup`), its QR,
 * and the key once the invoice is paid, claimed with the claim secret the gateway handed this page
 * (phone wallets that scan a QR never show the preimage). The pending claim is kept in
 * sessionStorage until claimed, so a reload while paying does not lose the money.
 */
import { showQr } from "./qr.js";

const PENDING = "owlrun-topup-pending";
const POLL_MS = 1500;

interface Pending {
  invoice: string;
  claim_secret: string;
  /** the key being refilled, if any (needed by the claim to prove it is that key's top-up) */
  refill?: string;
}

interface ApiError {
  error?: { message?: string };
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

function say(text: string, error = false): void {
  const m = $("message");
  m.textContent = text;
  m.classList.toggle("error", error);
}

async function post(path: string, body: unknown, key?: string): Promise<{ status: number; json: unknown }> {
  const res = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...(key ? { Authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: await res.json().catch(() => ({})) };
}

const errorText = (json: unknown) => (json as ApiError).error?.message ?? "the gateway refused";

async function showInvoice(p: Pending): Promise<void> {
  $("invoice").hidden = false;
  $<HTMLTextAreaElement>("invoice-text").value = p.invoice;
  $<HTMLAnchorElement>("open-wallet").href = `lightning:${p.invoice}`;
  await showQr($("invoice-qr"), p.invoice.toUpperCase(), "QR code of the Lightning invoice");
  const webln = (window as { webln?: { enable(): Promise<void>; sendPayment(i: string): Promise<unknown> } })
    .webln;
  const button = $<HTMLButtonElement>("webln");
  button.hidden = !webln;
  button.onclick = async () => {
    try {
      await webln!.enable();
      await webln!.sendPayment(p.invoice);
    } catch (err) {
      say(`The browser wallet did not pay: ${String(err)}`, true);
    }
  };
}

function showKey(token: string | undefined, balanceSats: number): void {
  $("result").hidden = false;
  $("invoice").hidden = true;
  $("balance").textContent = `${balanceSats.toLocaleString("en-US")} sats`;
  const key = $<HTMLInputElement>("key");
  if (token) {
    key.value = token;
    const base = `${location.origin}/v1`;
    $<HTMLTextAreaElement>("usage").value = [
      `base URL: ${base}`,
      `curl ${base}/chat/completions -H "Authorization: Bearer ${token}" \\`,
      `  -H "Content-Type: application/json" -d '{"model":"…","messages":[{"role":"user","content":"hi"}]}'`,
      `python: OpenAI(base_url="${base}", api_key="${token}")`,
    ].join("\n");
  } else {
    key.value = "(your key was refilled: it is unchanged)";
    $("key-title").textContent = "Refilled";
  }
}

/** Asks for the key until the invoice is paid; 402 means "not yet". */
async function claimWhenPaid(p: Pending): Promise<void> {
  for (;;) {
    const { status, json } = await post("/v1/topup/claim", {
      claim_secret: p.claim_secret,
      ...(p.refill ? { token: p.refill } : {}),
    }).catch(() => ({ status: 0, json: {} }));
    if (status === 200) {
      sessionStorage.removeItem(PENDING);
      const body = json as { token?: string; balance_sats: number };
      say(body.token ? "Paid. Here is your key." : "Paid. Your key was refilled.");
      showKey(body.token, body.balance_sats);
      return;
    }
    if (status !== 402 && status !== 0) {
      sessionStorage.removeItem(PENDING);
      say(errorText(json), true);
      return;
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

async function start(p: Pending): Promise<void> {
  sessionStorage.setItem(PENDING, JSON.stringify(p));
  await showInvoice(p);
  await claimWhenPaid(p);
}

$<HTMLFormElement>("topup-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const amount = Number($<HTMLInputElement>("amount").value);
  const unit = $<HTMLSelectElement>("unit").value;
  const refill = $<HTMLInputElement>("refill").value.trim() || undefined;
  const body = unit === "usd" ? { amount_usd: amount } : { amount_sats: Math.round(amount) };
  say("Asking for an invoice…");
  const { status, json } = await post("/v1/topup", body, refill);
  if (status !== 201) return say(errorText(json), true);
  const made = json as { invoice: string; claim_secret: string; amount_sats: number };
  say(`Pay ${made.amount_sats.toLocaleString("en-US")} sats.`);
  await start({ invoice: made.invoice, claim_secret: made.claim_secret, refill });
});

$("copy-invoice").addEventListener("click", () =>
  navigator.clipboard?.writeText($<HTMLTextAreaElement>("invoice-text").value),
);
$("copy-key").addEventListener("click", () =>
  navigator.clipboard?.writeText($<HTMLInputElement>("key").value),
);

// A reload while an invoice was open: keep waiting for it.
const saved = sessionStorage.getItem(PENDING);
if (saved) {
  say("Still waiting for the invoice you opened.");
  void start(JSON.parse(saved) as Pending);
}
document.body.dataset.ready = "true";
