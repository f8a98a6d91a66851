/**
 * The /topup page (402ai's top-up for people) in a real Chromium against a gateway whose fake
 * Lightning backend takes a few seconds to see a payment: invoice and QR, a reload while waiting
 * keeps the claim, the key is shown once when paid and carries the money, and a refill of that key.
 */
import { existsSync } from "node:fs";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";

const CHROMIUM = process.env.OWLRUN_CHROMIUM ?? "/usr/bin/chromium";
const HAS_CHROMIUM = existsSync(CHROMIUM);

describe.skipIf(!HAS_CHROMIUM)("the /topup page in Chromium", () => {
  let gateway: CliProcess;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    gateway = await startCli(["gateway", "--port", "0", "--data-dir", tempDir(), "--fake-delay-ms", "2500"]);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    page = await browser.newPage();
    page.on("pageerror", (e) => pageErrors.push(e.message));
    page.on("console", (m) => {
      if (/Content.Security.Policy/i.test(m.text())) pageErrors.push(m.text());
    });
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await gateway?.stop();
  });

  const balance = async (key: string) =>
    (
      (await (
        await fetch(`${gateway.url}/v1/balance`, { headers: { Authorization: `Bearer ${key}` } })
      ).json()) as { balance_sats: number }
    ).balance_sats;

  it("invoice with QR; a reload while paying keeps the claim; the paid key is shown once", async () => {
    const res = await page.goto(`${gateway.url}/topup`);
    expect(res!.status()).toBe(200);
    expect(res!.headers()["content-security-policy"]).toContain("script-src 'self'");
    await page.waitForSelector("body[data-ready=true]");
    await page.fill("#amount", "150");
    await page.click("#topup-form button[type=submit]");
    await page.waitForSelector("#invoice-qr svg");
    expect(await page.inputValue("#invoice-text")).toMatch(/^lnbc1500n1/);
    expect(await page.getAttribute("#open-wallet", "href")).toMatch(/^lightning:lnbc/);
    // Unpaid for a few seconds: reload, the page goes on waiting for the same invoice.
    await page.reload();
    await page.waitForSelector("body[data-ready=true]");
    expect(await page.textContent("#message")).toMatch(/still waiting/i);
    await page.waitForSelector("#result:not([hidden])", { timeout: 20_000 });
    const key = await page.inputValue("#key");
    expect(key).toMatch(/^abl_/);
    expect(await page.textContent("#balance")).toBe("150 sats");
    expect(await page.textContent("#result .warning")).toMatch(/shown once/);
    expect(await page.inputValue("#usage")).toContain(`${gateway.url}/v1`);
    expect(await balance(key)).toBe(150);
    // Claimed: a new visit has nothing pending, and the claim is gone from the page's storage.
    expect(
      await page.evaluate(() =>
        (
          globalThis as unknown as { sessionStorage: { getItem(k: string): string | null } }
        ).sessionStorage.getItem("owlrun-topup-pending"),
      ),
    ).toBeNull();

    // Refill the same key from the page.
    await page.goto(`${gateway.url}/topup`);
    await page.waitForSelector("body[data-ready=true]");
    expect(await page.textContent("#message")).toBe("");
    await page.fill("#amount", "50");
    await page.fill("#refill", key);
    await page.click("#topup-form button[type=submit]");
    await page.waitForSelector("#result:not([hidden])", { timeout: 20_000 });
    expect(await page.textContent("#key-title")).toBe("Refilled");
    expect(await page.textContent("#balance")).toBe("200 sats");
    expect(await balance(key)).toBe(200);
    expect(pageErrors).toEqual([]);
  });

  it("a refill naming an unknown key is refused before any invoice exists", async () => {
    await page.goto(`${gateway.url}/topup`);
    await page.waitForSelector("body[data-ready=true]");
    await page.fill("#refill", "abl_not-a-key");
    await page.click("#topup-form button[type=submit]");
    await page.locator("#message.error").waitFor();
    expect(await page.textContent("#message")).toMatch(/invalid API key/);
    expect(await page.isHidden("#invoice")).toBe(true);
  });
});
