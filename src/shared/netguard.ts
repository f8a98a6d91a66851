/**
 * Outbound requests to hosts someone else chose (a provider's Lightning address): only to public
 * unicast addresses. The name is resolved once, every address it resolves to is checked, and the
 * connection goes to the address that was checked (the check runs inside the socket's `lookup`),
 * so a name that answers a public address to the check and a private one to the connect (DNS
 * rebinding) gains nothing. Loopback may be allowed for tests and the devnet; private ranges never.
 */
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { BlockList, isIP, type LookupFunction } from "node:net";

export type AddressClass = "public" | "loopback" | "private";

const loopback = new BlockList();
loopback.addSubnet("127.0.0.0", 8, "ipv4");
loopback.addAddress("::1", "ipv6");

/** Everything that is not the public internet: RFC 1918, CGNAT, link-local, ULA, reserved, … */
const nonPublic = new BlockList();
for (const [net, bits] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.0.2.0", 24],
  ["192.88.99.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["198.51.100.0", 24],
  ["203.0.113.0", 24],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
] as const)
  nonPublic.addSubnet(net, bits, "ipv4");
for (const [net, bits] of [
  ["::", 128],
  ["64:ff9b::", 96],
  ["64:ff9b:1::", 48],
  ["100::", 64],
  ["2001:db8::", 32],
  ["2002::", 16],
  ["fc00::", 7],
  ["fe80::", 10],
  ["fec0::", 10],
  ["ff00::", 8],
] as const)
  nonPublic.addSubnet(net, bits, "ipv6");

/** An IPv4 address carried in IPv6 (::ffff:a.b.c.d, ::a.b.c.d, or the hex form of either). */
function embeddedIpv4(ip: string): string | undefined {
  const m = /^::(?:ffff:)?(?:(\d+\.\d+\.\d+\.\d+)|([0-9a-f]{1,4}):([0-9a-f]{1,4}))$/i.exec(ip);
  if (!m) return undefined;
  if (m[1]) return m[1];
  const hi = parseInt(m[2]!, 16);
  const lo = parseInt(m[3]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** What kind of address an IP literal is (anything unparsable counts as private). */
export function classifyAddress(ip: string): AddressClass {
  const bare = ip.replace(/^\[|\]$/g, "").replace(/%.*$/, "");
  const v4 = embeddedIpv4(bare);
  if (v4) return classifyAddress(v4);
  const family = isIP(bare);
  if (family === 0) return "private";
  const type = family === 4 ? "ipv4" : "ipv6";
  if (loopback.check(bare, type)) return "loopback";
  return nonPublic.check(bare, type) ? "private" : "public";
}

export class BlockedAddressError extends Error {
  readonly code = "EBLOCKEDADDRESS";
}

/** Names that mean this machine or a local network whatever DNS says. */
export function isLocalName(host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, "");
  return h === "localhost" || h.endsWith(".localhost") || h.endsWith(".local") || h.endsWith(".internal");
}

/**
 * Why `host` (a name or IP literal) may not be dialled without resolving it, or undefined. Names
 * are checked again when they resolve (guardedLookup).
 */
export function staticHostProblem(host: string, allowLoopback: boolean): string | undefined {
  const bare = host.replace(/^\[|\]$/g, "");
  const literal = isIP(bare) !== 0 || embeddedIpv4(bare) !== undefined;
  const kind = literal ? classifyAddress(bare) : isLocalName(bare) ? "loopback" : "public";
  if (kind === "public" || (kind === "loopback" && allowLoopback)) return undefined;
  return kind === "loopback"
    ? `${host} is this machine (loopback)`
    : `${host} is a private, link-local or reserved address`;
}

/**
 * A socket `lookup` that resolves the name, refuses it unless every address is public (or loopback,
 * when allowed), and hands the socket exactly the addresses it checked.
 */
export function guardedLookup(allowLoopback: boolean): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { all: true, family: options.family ?? 0 }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, "", 0);
      const bad = addresses.find((a) => {
        const kind = classifyAddress(a.address);
        return !(kind === "public" || (kind === "loopback" && allowLoopback));
      });
      if (bad || addresses.length === 0) {
        const why = bad
          ? `${hostname} resolves to ${bad.address}, not a public address`
          : `${hostname} has no address`;
        return callback(new BlockedAddressError(why), "", 0);
      }
      if (options.all) return (callback as (e: null, a: LookupAddress[]) => void)(null, addresses);
      callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
}
