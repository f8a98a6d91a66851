/**
 * Owlrun Chat in a real Chromium against a devnet on loopback: the browser wallet tops up over the
 * fake Lightning backend, pays a streamed prompt, keeps its balance across a reload, gets its refund
 * when no provider serves the model, and withdraws everything as a token a cashu-ts wallet redeems.
 * Screenshots of the main states go to docs/screenshots/ for the README.
 */
import { existsSync, mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SCRIPTED_ANSWER, SCRIPTED_MODEL_ID } from "../../provider/index.js";
import { newWallet, sumAmounts } from "../support/cashu.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";

const CHROMIUM = process.env.OWLRUN_CHROMIUM ?? "/usr/bin/chromium";
const SHOTS = resolve(import.meta.dirname, "../../docs/screenshots");

/** Balance shown by the page, in sats. */
const balanceOf = async (page: Page) => Number((await page.textContent("#balance"))!.replace(/\D/g, ""));

describe.skipIf(!existsSync(CHROMIUM))("Owlrun Chat in Chromium", () => {
  let devnet: CliProcess;
  let browser: Browser;
  let page: Page;
  const cspViolations: string[] = [];
  const pageErrors: string[] = [];

  const shot = (name: string) => page.screenshot({ path: resolve(SHOTS, `${name}.png`), fullPage: true });

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    devnet = await startCli(["devnet", "--port", "0", "--embedded", "--data-dir", tempDir()], {}, 60_000);
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

  it("pays a prompt, streams the answer in markdown and drops the balance by the charged amount", async () => {
    await page.selectOption("#model", SCRIPTED_MODEL_ID);
    await page.fill("#prompt", "Say hello");
    await page.click("#send");
    const meta = page.locator("li.assistant .meta").first();
    await meta.waitFor();
    expect((await page.textContent("li.assistant .body"))!.trim()).toBe(SCRIPTED_ANSWER);
    const charged = Number(await meta.getAttribute("data-cost"));
    expect(charged).toBeGreaterThanOrEqual(2);
    expect(await meta.textContent()).toMatch(
      new RegExp(`^cost ${charged} sats · change \\d+ sats · balance ${100 - charged} sats$`),
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
    expect(await balanceOf(page)).toBe(before);
    await page.unroute("**/v1/models");
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
    expect(cspViolations).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
