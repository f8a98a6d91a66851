/**
 * Issue 15 item 9: a payout address must not point the gateway at its own network. The old check
 * missed 127/8, localhost, ::1, 100.64/10, IPv4-mapped IPv6 and names resolving to private
 * addresses: `x@127.0.0.1:PORT` made the payout run open a connection to PORT. Now every resolved
 * address and every redirect is checked, the socket connects to the checked address, and provider
 * registration refuses such an address with a 400.
 */
import { createServer, type Server } from "node:http";
import { createServer as createTcpServer, type AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { invoiceForLightningAddress, lightningAddressProblem } from "../../src/shared/lnurl.js";
import { classifyAddress, guardedLookup } from "../../src/shared/netguard.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";
import { postJson } from "../support/payments.js";

describe("address classes", () => {
  it("only public unicast addresses are public", () => {
    const cases: [string, string][] = [
      ["127.0.0.1", "loopback"],
      ["127.45.6.7", "loopback"],
      ["::1", "loopback"],
      ["::ffff:127.0.0.1", "loopback"],
      ["::ffff:7f00:1", "loopback"],
      ["10.1.2.3", "private"],
      ["172.16.0.1", "private"],
      ["172.31.255.255", "private"],
      ["192.168.1.1", "private"],
      ["100.64.0.1", "private"],
      ["100.127.255.254", "private"],
      ["169.254.169.254", "private"],
      ["0.0.0.0", "private"],
      ["::", "private"],
      ["fe80::1", "private"],
      ["fc00::1", "private"],
      ["fd12:3456::1", "private"],
      ["::ffff:10.0.0.1", "private"],
      ["::ffff:a9fe:a9fe", "private"],
      ["224.0.0.1", "private"],
      ["not-an-ip", "private"],
      ["172.32.0.1", "public"],
      ["100.128.0.1", "public"],
      ["8.8.8.8", "public"],
      ["2606:4700:4700::1111", "public"],
    ];
    for (const [ip, kind] of cases) expect(classifyAddress(ip), ip).toBe(kind);
  });

  it("a name is resolved and refused when it resolves to this machine", async () => {
    const lookup = guardedLookup(false);
    const err = await new Promise<Error | null>((resolve) => lookup("localhost", {}, (e) => resolve(e)));
    expect(err?.message).toMatch(/localhost resolves to .*not a public address/);
    const allowed = await new Promise<Error | null>((resolve) =>
      guardedLookup(true)("localhost", {}, (e) => resolve(e)),
    );
    expect(allowed).toBeNull();
  });
});

describe("payout addresses on loopback", () => {
  let tcp: ReturnType<typeof createTcpServer>;
  let port: number;
  let connections = 0;

  beforeAll(async () => {
    tcp = createTcpServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => tcp.listen(0, "127.0.0.1", r));
    port = (tcp.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => tcp.close(() => r())));

  it("x@127.0.0.1:PORT, x@localhost:PORT and private hosts are refused without opening a connection", async () => {
    for (const address of [`x@127.0.0.1:${port}`, `x@localhost:${port}`, "x@10.0.0.1", "x@169.254.169.254"]) {
      await expect(invoiceForLightningAddress(address, 10), address).rejects.toMatchObject({
        type: "invalid_lightning_address",
        status: 400,
      });
    }
    expect(connections).toBe(0);
  });

  it("a loopback LNURL server (allowed for tests) redirecting to a private address is refused", async () => {
    const hops: string[] = [];
    const server: Server = createServer((req, res) => {
      hops.push(req.url ?? "");
      res.writeHead(302, { location: "http://10.0.0.1/.well-known/lnurlp/x" });
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const lnurlPort = (server.address() as AddressInfo).port;
    try {
      await expect(
        invoiceForLightningAddress(`x@127.0.0.1:${lnurlPort}`, 10, { allowLoopbackHttp: true }),
      ).rejects.toThrow(/refusing 10\.0\.0\.1/);
      expect(hops).toEqual(["/.well-known/lnurlp/x"]);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it("the registration check names the problem; loopback is allowed only when asked", () => {
    expect(lightningAddressProblem("x@127.0.0.1:19150")).toMatch(/loopback/);
    expect(lightningAddressProblem("x@100.64.1.1")).toMatch(/private/);
    expect(lightningAddressProblem("x@127.0.0.1:19150", true)).toBeUndefined();
    expect(lightningAddressProblem("x@10.0.0.1", true)).toMatch(/private/);
    expect(lightningAddressProblem("alice@getalby.com")).toBeUndefined();
  });
});

describe("provider registration", () => {
  let gw: CliProcess;
  beforeAll(async () => {
    gw = await startCli(["gateway", "--port", "0", "--data-dir", tempDir(), "--fake-delay-ms", "20"]);
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it("refuses a Lightning address on this machine or a private network with a clear 400", async () => {
    const { api_key } = (await (await postJson(`${gw.url}/v1/gateway/signup`, {})).json()) as {
      api_key: string;
    };
    const register = (lightning_address: string) =>
      postJson(
        `${gw.url}/v1/gateway/register`,
        { node_id: "node-ssrf", api_key, models: ["m:tiny"], lightning_address },
        { authorization: `Bearer ${api_key}` },
      );
    for (const address of ["x@127.0.0.1:19150", "x@localhost", "x@192.168.1.10", "x@100.64.0.7"]) {
      const res = await register(address);
      expect(res.status, address).toBe(400);
      const body = (await res.json()) as { error: { type: string; message: string } };
      expect(body.error.type).toBe("invalid_lightning_address");
      expect(body.error.message).toContain(address);
    }
    expect((await register("node@example.com")).status).toBe(201);
  });
});
