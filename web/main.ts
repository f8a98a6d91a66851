/** Owlrun Chat: wires the page to the browser wallet and the gateway it is served from. */
import { api, type ChatMessage, maxCostSats, type ModelInfo } from "./api.js";
import { sendPrompt } from "./chat.js";
import { renderMarkdown } from "./markdown.js";
import { showQr } from "./qr.js";
import { BrowserWallet } from "./wallet.js";

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const els = {
  status: $("status"),
  balance: $<HTMLOutputElement>("balance"),
  message: $("wallet-message"),
  topupForm: $<HTMLFormElement>("topup-form"),
  topupAmount: $<HTMLInputElement>("topup-amount"),
  invoice: $("invoice"),
  invoiceQr: $("invoice-qr"),
  invoiceText: $<HTMLTextAreaElement>("invoice-text"),
  invoiceStatus: $("invoice-status"),
  tokenForm: $<HTMLFormElement>("token-form"),
  tokenIn: $<HTMLTextAreaElement>("token-in"),
  withdraw: $<HTMLButtonElement>("withdraw"),
  withdrawal: $("withdrawal"),
  withdrawQr: $("withdraw-qr"),
  withdrawToken: $<HTMLTextAreaElement>("withdraw-token"),
  phrase: $("phrase"),
  restoreForm: $<HTMLFormElement>("restore-form"),
  restorePhrase: $<HTMLTextAreaElement>("restore-phrase"),
  model: $<HTMLSelectElement>("model"),
  maxTokens: $<HTMLInputElement>("max-tokens"),
  messages: $<HTMLOListElement>("messages"),
  promptForm: $<HTMLFormElement>("prompt-form"),
  prompt: $<HTMLTextAreaElement>("prompt"),
  send: $<HTMLButtonElement>("send"),
  price: $("price"),
};

let wallet: BrowserWallet;
let mint = "";
let models: ModelInfo[] = [];
const history: ChatMessage[] = [];
let topupAbort: AbortController | undefined;
/** the model picked last, remembered across reloads */
const MODEL_KEY = "owlrun-chat/model";

const sats = (n: number) => `${n.toLocaleString("en-US")} sat${n === 1 ? "" : "s"}`;

function say(text: string, isError = false) {
  els.message.textContent = text;
  els.message.classList.toggle("error", isError);
}

function refreshBalance() {
  els.balance.value = sats(wallet.balance());
  els.withdraw.disabled = wallet.balance() === 0 && wallet.vault.data.inbox.length === 0;
}

/** Runs a user action with its button disabled and any error shown in the wallet's status line. */
async function act(button: HTMLButtonElement | null, fn: () => Promise<void>) {
  if (button) button.disabled = true;
  try {
    await fn();
  } catch (err) {
    say((err as Error).message, true);
  } finally {
    if (button) button.disabled = false;
    refreshBalance();
  }
}

async function loadModels() {
  const [list, info] = await Promise.all([api.models(), api.info()]);
  models = list;
  // The user's pick, else the gateway's default model (never just the first by name).
  const chosen = els.model.value || localStorage.getItem(MODEL_KEY) || info.default_model;
  els.model.replaceChildren(
    ...models.map((m) => {
      const p = m.routecat_pricing;
      const label = p
        ? `${m.id} — ${p.input_per_1m_tokens_sats} / ${p.output_per_1m_tokens_sats} sats per 1M in/out`
        : m.id;
      return new Option(label, m.id, false, m.id === chosen);
    }),
  );
  if (models.length === 0) els.model.append(new Option("no provider online", "", true, true));
  void updatePrice();
}

async function loadStats() {
  const s = await api.stats();
  els.status.textContent = `${s.nodes_online} node${s.nodes_online === 1 ? "" : "s"} online · ${s.jobs_24h} job${s.jobs_24h === 1 ? "" : "s"} and ${s.tokens_24h.toLocaleString("en-US")} tokens in 24 h · BTC/USD ${Math.round(s.btc_usd).toLocaleString("en-US")}`;
}

function draft(): ChatMessage[] {
  return [...history, { role: "user", content: els.prompt.value }];
}

async function updatePrice() {
  const model = models.find((m) => m.id === els.model.value);
  if (!model) return void (els.price.textContent = "");
  const cost = await maxCostSats(model, draft(), Number(els.maxTokens.value) || 512).catch(() => undefined);
  els.price.textContent = cost === undefined ? "" : `up to ${sats(cost)}; change comes back`;
}

function addMessage(role: "user" | "assistant", text: string): HTMLLIElement {
  const li = document.createElement("li");
  li.className = role;
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = role === "user" ? "You" : "Assistant";
  const body = document.createElement("div");
  body.className = "body";
  body.textContent = text;
  li.append(who, body);
  els.messages.append(li);
  return li;
}

async function onPrompt() {
  const model = models.find((m) => m.id === els.model.value);
  const content = els.prompt.value.trim();
  if (!model || !content) return;
  const maxTokens = Number(els.maxTokens.value) || 512;
  const messages: ChatMessage[] = [...history, { role: "user", content }];
  const paySats = await maxCostSats(model, messages, maxTokens);
  if (paySats > wallet.balance()) {
    await wallet.claimInbox();
    if (paySats > wallet.balance())
      throw new Error(`This prompt needs up to ${sats(paySats)}: top up first.`);
  }
  addMessage("user", content);
  els.prompt.value = "";
  const li = addMessage("assistant", "…");
  li.setAttribute("aria-busy", "true");
  const body = li.querySelector<HTMLElement>(".body")!;
  const before = wallet.balance();
  const result = await sendPrompt(wallet, { model: model.id, messages, maxTokens, paySats }, (text) => {
    body.innerHTML = renderMarkdown(text);
  });
  await wallet.claimInbox().catch(() => undefined);
  li.removeAttribute("aria-busy");
  if (result.text) {
    body.innerHTML = renderMarkdown(result.text);
    history.push({ role: "user", content }, { role: "assistant", content: result.text });
  } else body.textContent = "";
  const meta = document.createElement("span");
  meta.className = "meta";
  meta.dataset.cost = String(result.chargedSats ?? "");
  const spent = before - wallet.balance();
  meta.textContent =
    result.chargedSats !== undefined
      ? `cost ${sats(result.chargedSats)} · change ${sats(result.changeSats)} · balance ${sats(wallet.balance())}`
      : spent > 0
        ? `paid ${sats(spent)} · balance ${sats(wallet.balance())}`
        : `not charged: the payment came back · balance ${sats(wallet.balance())}`;
  if (result.error) {
    const e = document.createElement("span");
    e.className = "meta error";
    e.textContent = result.error;
    li.append(e);
  }
  li.append(meta);
  void loadStats().catch(() => undefined);
}

async function onTopUp() {
  topupAbort?.abort();
  const amount = Number(els.topupAmount.value);
  if (!Number.isSafeInteger(amount) || amount < 1) throw new Error("Enter a whole number of sats.");
  const quote = await wallet.createTopUp(amount);
  await watchInvoice(quote);
}

async function watchInvoice(quote: {
  quote: string;
  amount: number;
  request: string;
  expiry: number | null;
}) {
  const abort = new AbortController();
  topupAbort = abort;
  els.invoice.hidden = false;
  els.invoiceText.value = quote.request;
  els.invoiceStatus.textContent = `Waiting for payment of ${sats(quote.amount)}…`;
  await showQr(
    els.invoiceQr,
    `lightning:${quote.request}`,
    `QR code of a Lightning invoice for ${sats(quote.amount)}`,
  );
  try {
    const added = await wallet.completeTopUp(quote, abort.signal);
    els.invoiceStatus.textContent = `Paid: ${sats(added)} added.`;
    say(`Top-up of ${sats(added)} received.`);
    els.invoice.hidden = true;
  } catch (err) {
    if (abort.signal.aborted) return;
    throw err;
  }
}

async function showWithdrawal(w: { token: string; amount: number }) {
  els.withdrawal.hidden = false;
  els.withdrawToken.value = w.token;
  await showQr(els.withdrawQr, w.token, `QR code of a cashu token for ${sats(w.amount)}`);
}

function copyFrom(field: HTMLTextAreaElement) {
  field.select();
  void navigator.clipboard?.writeText(field.value).then(
    () => say("Copied."),
    () => document.execCommand("copy"),
  );
}

function wire() {
  els.topupForm.addEventListener("submit", (e) => {
    e.preventDefault();
    void act(els.topupForm.querySelector("button"), onTopUp);
  });
  $("invoice-copy").addEventListener("click", () => copyFrom(els.invoiceText));
  $("invoice-cancel").addEventListener("click", () => {
    topupAbort?.abort();
    els.invoice.hidden = true;
  });
  els.tokenForm.addEventListener("submit", (e) => {
    e.preventDefault();
    void act(els.tokenForm.querySelector("button"), async () => {
      const amount = wallet.inspect(els.tokenIn.value);
      wallet.keepToken(els.tokenIn.value);
      els.tokenIn.value = "";
      await wallet.claimInbox();
      say(`Added ${sats(amount)}.`);
    });
  });
  els.withdraw.addEventListener("click", () =>
    act(els.withdraw, async () => {
      const w = await wallet.withdrawAll();
      if (!w) return say("Nothing to withdraw.");
      await showWithdrawal(w);
      say(`Withdrew ${sats(w.amount)}: scan or copy the token below.`);
    }),
  );
  $("withdraw-copy").addEventListener("click", () => copyFrom(els.withdrawToken));
  $("withdraw-reclaim").addEventListener("click", (e) =>
    act(e.currentTarget as HTMLButtonElement, async () => {
      wallet.keepToken(els.withdrawToken.value);
      await wallet.claimInbox();
      els.withdrawal.hidden = true;
      say("The withdrawn ecash is back in this wallet.");
    }),
  );
  $("phrase-show").addEventListener("click", () => {
    els.phrase.hidden = !els.phrase.hidden;
    els.phrase.textContent = wallet.mnemonic;
  });
  els.restoreForm.addEventListener("submit", (e) => {
    e.preventDefault();
    void act(els.restoreForm.querySelector("button"), async () => {
      if (wallet.balance() > 0) throw new Error("Withdraw this wallet's ecash before restoring another one.");
      wallet = await BrowserWallet.open(localStorage, mint, els.restorePhrase.value);
      els.restorePhrase.value = "";
      say("Restoring…");
      const found = await wallet.restoreAll();
      say(`Restored ${sats(found)}.`);
    });
  });
  els.promptForm.addEventListener("submit", (e) => {
    e.preventDefault();
    void act(els.send, onPrompt);
  });
  els.prompt.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) els.promptForm.requestSubmit();
  });
  let priceTimer: ReturnType<typeof setTimeout> | undefined;
  const reprice = () => {
    clearTimeout(priceTimer);
    priceTimer = setTimeout(() => void updatePrice(), 300);
  };
  els.prompt.addEventListener("input", reprice);
  els.maxTokens.addEventListener("input", reprice);
  els.model.addEventListener("change", () => {
    localStorage.setItem(MODEL_KEY, els.model.value);
    reprice();
  });
}

async function start() {
  wire();
  const info = await api.info();
  mint = info.mints[0] ?? "";
  if (!mint) throw new Error("this gateway names no mint");
  wallet = await BrowserWallet.open(localStorage, mint);
  refreshBalance();
  const last = wallet.vault.data.lastWithdrawal;
  if (last) await showWithdrawal(last);
  await Promise.all([loadModels(), loadStats()]);
  // Finish what a closed tab interrupted, then keep watching an unpaid invoice.
  await wallet.repair();
  refreshBalance();
  const open = wallet.vault.data.quotes.at(-1);
  if (open) void act(null, () => watchInvoice(open));
  setInterval(() => void loadModels().catch(() => undefined), 30_000);
  setInterval(() => void loadStats().catch(() => undefined), 30_000);
  document.body.dataset.ready = "true";
}

start().catch((err) => {
  say(`Could not start: ${(err as Error).message}`, true);
  els.status.textContent = "Gateway unreachable.";
});
