/**
 * Owlrun Chat in a real Chromium against a devnet on loopback: the browser wallet tops up over the
 * fake Lightning backend, pays a streamed prompt, keeps its balance across a reload, gets its refund
 * when no provider serves the model, and withdraws everything as a token a cashu-ts wallet redeems.
 * Screenshots of the main states go to docs/screenshots/ for the README, only when asked
 * (`UPDATE_SCREENSHOTS=1`), so a test run leaves the tracked PNGs alone. Without Chromium the
 * suite is skipped and says why and how to enable it.
 */
import { existsSync, mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { getEncodedToken, getTokenMetadata } from "@cashu/cashu-ts";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SCRIPTED_ANSWER, SCRIPTED_MODEL_ID } from "../../provider/index.js";
import { mintProofs, newWallet, sumAmounts } from "../support/cashu.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";

const CHROMIUM = process.env.OWLRUN_CHROMIUM ?? "/usr/bin/chromium";
const SHOTS = resolve(import.meta.dirname, "../../docs/screenshots");
const UPDATE_SHOTS = process.env.UPDATE_SCREENSHOTS === "1";
const HAS_CHROMIUM = existsSync(CHROMIUM);
if (!HAS_CHROMIUM)
  process.stderr.write(
    `test/web/chat.test.ts: browser tests skipped: no Chromium at ${CHROMIUM}. ` +
      "Enable them with `apt-get install chromium` or OWLRUN_CHROMIUM=/path/to/chromium (.ci/run installs it).\n",
  );

/** Balance shown by the page, in sats. */
const balanceOf = async (page: Page) => Number((await page.textContent("#balance"))!.replace(/\D/g, ""));

describe.skipIf(!HAS_CHROMIUM)("Owlrun Chat in Chromium", () => {
  let devnet: CliProcess;
  let browser: Browser;
  let page: Page;
  const cspViolations: string[] = [];
  const pageErrors: string[] = [];

  const shot = async (name: string) => {
    if (UPDATE_SHOTS) await page.screenshot({ path: resolve(SHOTS, `${name}.png`), fullPage: true });
  };

  beforeAll(async () => {
    if (UPDATE_SHOTS) mkdirSync(SHOTS, { recursive: true });
    // At 50 USD/BTC a 512-token answer may cost tens of sats: the page pays that and gets change back.
    devnet = await startCli(
      ["devnet", "--port", "0", "--embedded", "--btc-usd", "50", "--data-dir", tempDir()],
      {},
      60_000,
    );
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    page.on("console", (m) => {
      if (/Content.Security.Policy/i.test(m.text())) cspViolations.push(m.text());
    });
    page.on("pageerror", (e) => pageErrors.push(e.message));
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await devnet?.stop();
  });

  it("serves the page from the gateway with a self-only Content-Security-Policy", async () => {
    const res = await page.goto(`${devnet.url}/`);
    const csp = res!.headers()["content-security-policy"]!;
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    await page.waitForSelector("body[data-ready=true]");
    expect(await page.textContent("#balance")).toBe("0 sats");
    expect(await page.textContent("#status")).toMatch(
      /1 node online · \d+ jobs and \d+ tokens in 24 h · BTC\/USD [\d,]+/,
    );
    expect(await page.textContent(".warning")).toMatch(/closing the tab[\s\S]*can lose it/i);
    // Live sats prices from /v1/models.
    expect(await page.locator("#model option").allTextContents()).toContainEqual(
      expect.stringMatching(new RegExp(`^${SCRIPTED_MODEL_ID} — [\\d.]+ / [\\d.]+ sats per 1M in/out$`)),
    );
    // The API's own 404s are untouched by the page.
    const missing = await fetch(`${devnet.url}/v1/nothing-here`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as any).error.type).toBe("not_found");
    await shot("chat-empty-wallet");
  });

  it("tops up by Lightning: invoice with QR, then the paid quote is minted", async () => {
    await page.fill("#topup-amount", "100");
    await page.click("#topup-form button");
    await page.waitForSelector("#invoice-qr svg");
    expect(await page.inputValue("#invoice-text")).toMatch(/^lnbc1/);
    await shot("chat-invoice");
    await page
      .locator("#balance")
      .filter({ hasText: /^100 sats$/ })
      .waitFor();
    expect(await page.isHidden("#invoice")).toBe(true);
  });

  it("pays a prompt with its exact max cost, streams the answer and keeps the change", async () => {
    await page.selectOption("#model", SCRIPTED_MODEL_ID);
    await page.fill("#prompt", "Say hello");
    const price = page.locator("#price").filter({ hasText: /^up to \d+ sats/ });
    await price.waitFor();
    const quoted = Number(/up to (\d+)/.exec((await price.textContent())!)![1]);
    const sent = page.waitForRequest("**/v1/chat/completions");
    await page.click("#send");
    // The X-Cashu token carries exactly the quoted maximum.
    const paid = getTokenMetadata((await sent).headers()["x-cashu"]!).amount;
    expect(Number(paid)).toBe(quoted);
    const meta = page.locator("li.assistant .meta").first();
    await meta.waitFor();
    expect((await page.textContent("li.assistant .body"))!.trim()).toBe(SCRIPTED_ANSWER);
    const charged = Number(await meta.getAttribute("data-cost"));
    expect(charged).toBeGreaterThanOrEqual(2);
    expect(quoted - charged).toBeGreaterThan(0);
    expect(await meta.textContent()).toBe(
      `cost ${charged} sats · change ${quoted - charged} sats · balance ${100 - charged} sats`,
    );
    expect(await balanceOf(page)).toBe(100 - charged);
    await shot("chat-answer");
  });

  it("keeps the balance across a reload", async () => {
    const before = await balanceOf(page);
    await page.reload();
    await page.waitForSelector("body[data-ready=true]");
    expect(await balanceOf(page)).toBe(before);
  });

  it("recovers the change the gateway kept when the stream is cut before the change event", async () => {
    const before = await balanceOf(page);
    let charged = 0;
    // The gateway answers in full (and stores the change); the page only sees the answer's first event.
    await page.route("**/v1/chat/completions", async (route) => {
      const res = await route.fetch();
      const body = await res.text();
      charged = JSON.parse(/"usage":\{.*?"cost":(\{[^}]*\})/.exec(body)![1]!).sats;
      await route.fulfill({ response: res, body: body.split("\n\n")[0] + "\n\n" });
    });
    await page.fill("#prompt", "Say hello again");
    await page.click("#send");
    await page.locator("li.assistant .meta").last().waitFor();
    await page.unroute("**/v1/chat/completions");
    expect(charged).toBeGreaterThanOrEqual(2);
    expect(await balanceOf(page)).toBe(before - charged);
    expect(await page.locator("li.assistant .meta").last().textContent()).toBe(
      `paid ${charged} sats · balance ${before - charged} sats`,
    );
    // Nothing is left in flight: the change was claimed from the gateway by request id.
    const saved = await page.evaluate(() =>
      (globalThis as any).localStorage.getItem("owlrun-chat/wallet/v1"),
    );
    expect(JSON.parse(saved).inFlight).toEqual([]);
  });

  it("gets the whole payment back from X-Cashu-Change when no provider serves the model", async () => {
    const before = await balanceOf(page);
    // A model that went offline after the list was read: the gateway refuses with 503 and the refund.
    await page.route("**/v1/models", async (route) => {
      const res = await route.fetch();
      const body = (await res.json()) as { data: { id: string }[] };
      body.data.push({ ...body.data[0], id: "gone:model" });
      await route.fulfill({ response: res, json: body });
    });
    await page.reload();
    await page.waitForSelector("body[data-ready=true]");
    await page.selectOption("#model", "gone:model");
    await page.fill("#prompt", "anyone there?");
    await page.click("#send");
    const error = page.locator("li.assistant .meta.error");
    await error.waitFor();
    expect(await error.textContent()).toMatch(/no provider/);
    expect(await page.locator("li.assistant .meta:not(.error)").last().textContent()).toBe(
      `not charged: the payment came back · balance ${before} sats`,
    );
    expect(await balanceOf(page)).toBe(before);
    await page.unroute("**/v1/models");
  });

  it("adds a pasted cashu token to the balance", async () => {
    const before = await balanceOf(page);
    const sender = await newWallet(`${devnet.url}/mint`);
    const proofs = await mintProofs(sender, 21);
    await page.fill("#token-in", getEncodedToken({ mint: `${devnet.url}/mint`, unit: "sat", proofs }));
    await page.click("#token-form button");
    await page.locator("#wallet-message").filter({ hasText: "Added 21 sats." }).waitFor();
    expect(await balanceOf(page)).toBe(before + 21);
  });

  it("restores the same balance in another browser from the backup phrase", async () => {
    await page.click(".backup summary");
    await page.click("#phrase-show");
    const phrase = (await page.textContent("#phrase"))!;
    expect(phrase.split(" ")).toHaveLength(12);
    const other = await browser.newContext();
    try {
      const fresh = await other.newPage();
      await fresh.goto(`${devnet.url}/`);
      await fresh.waitForSelector("body[data-ready=true]");
      expect(await balanceOf(fresh)).toBe(0);
      await fresh.click(".backup summary");
      await fresh.fill("#restore-phrase", phrase);
      await fresh.click("#restore-form button");
      await fresh
        .locator("#wallet-message")
        .filter({ hasText: /^Restored/ })
        .waitFor();
      expect(await balanceOf(page)).toBeGreaterThan(0);
      expect(await balanceOf(fresh)).toBe(await balanceOf(page));
    } finally {
      await other.close();
    }
  });

  it("brings back outputs a tab closed mid-swap never saved, from the phrase (NUT-09)", async () => {
    const before = await balanceOf(page);
    // As if the tab died after the mint signed but before the page stored the last proof.
    const lost = await page.evaluate(() => {
      const storage = (globalThis as any).localStorage;
      const vault = JSON.parse(storage.getItem("owlrun-chat/wallet/v1"));
      const proof = vault.proofs.pop();
      storage.setItem("owlrun-chat/wallet/v1", JSON.stringify({ ...vault, signing: true }));
      return proof.amount as number;
    });
    await page.reload();
    await page.waitForSelector("body[data-ready=true]");
    expect(lost).toBeGreaterThan(0);
    expect(await balanceOf(page)).toBe(before);
  });

  it("withdraws everything as a token (with QR) that a cashu-ts wallet redeems for the exact amount", async () => {
    const total = await balanceOf(page);
    await page.click("#withdraw");
    await page.waitForSelector("#withdraw-qr svg");
    const token = await page.inputValue("#withdraw-token");
    expect(token).toMatch(/^cashu[AB]/);
    expect(await page.textContent("#balance")).toBe("0 sats");
    await shot("chat-withdraw");
    const wallet = await newWallet(`${devnet.url}/mint`);
    expect(sumAmounts(await wallet.receive(token))).toBe(total);
  });

  it("is usable at 375 px and raised no CSP violation or page error", async () => {
    await page.setViewportSize({ width: 375, height: 800 });
    const overflow = await page.evaluate(() => {
      const g = globalThis as any; // the page's window (the test's tsconfig has no DOM types)
      return g.document.documentElement.scrollWidth - g.innerWidth;
    });
    expect(overflow).toBeLessThanOrEqual(0);
    await shot("chat-mobile");
    // Every field has a label a screen reader announces.
    const unlabelled = await page.evaluate(() =>
      [...(globalThis as any).document.querySelectorAll("input, select, textarea")]
        .filter((el: any) => el.labels.length === 0)
        .map((el: any) => el.id),
    );
    expect(unlabelled).toEqual([]);
    expect(cspViolations).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
