/**
 * Which webhook URLs may be called (server-side request forgery): a webhook is a URL a caller
 * chooses and our function then POSTs to, from inside the project's network. So only public
 * internet hosts are allowed: a host that is, or resolves to, a loopback, private, link-local
 * (the metadata server, 169.254.169.254), CGNAT, unique-local, multicast, unspecified, reserved or
 * documentation address is refused, as are internal names (metadata.google.internal, single-label
 * names, .internal, .local, localhost). IPv4 written in decimal, hex or octal (0x7f000001) is
 * normalised by the WHATWG URL parser before the check; IPv4 inside IPv6 (mapped, compatible,
 * NAT64, 6to4) is checked as the IPv4 it carries.
 *
 * The check answers the address it vetted, and delivery connects to that address only (DNS
 * rebinding: a second lookup at connect time could answer something else). It runs again at every
 * delivery attempt. An explicit allow-list of `host:port` (local runs only, see config) lets a
 * local receiver through.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Every address a host name resolves to (injected: tests answer from a table, never the network). */
export type Lookup = (hostname: string) => Promise<ResolvedAddress[]>;

export const systemLookup: Lookup = async (hostname) =>
  (await dnsLookup(hostname, { all: true, verbatim: true })).map(({ address, family }) => ({
    address,
    family: family === 6 ? 6 : 4,
  }));

export interface WebhookPolicy {
  lookup: Lookup;
  /** `http://` too (local runs); otherwise `https://` only. */
  allowHttp: boolean;
  /** `host:port` pairs let through whatever they resolve to (local runs only). */
  allowList: readonly string[];
}

export interface CheckedWebhook {
  url: URL;
  /** The vetted address to connect to. */
  pinned: ResolvedAddress;
}

export class WebhookRefused extends Error {
  override name = 'WebhookRefused';
  constructor(
    readonly code: 'INVALID_WEBHOOK_URL' | 'WEBHOOK_HOST_NOT_ALLOWED',
    message: string,
  ) {
    super(message);
  }
}

type Bytes = number[];

function parseIpv4(text: string): Bytes | undefined {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((part) => /^\d{1,3}$/.test(part) && Number(part) <= 255)) return undefined;
  return parts.map(Number);
}

function parseIpv6(text: string): Bytes | undefined {
  let head = text.toLowerCase();
  const zone = head.indexOf('%');
  if (zone >= 0) head = head.slice(0, zone);
  let tail: Bytes = [];
  const lastColon = head.lastIndexOf(':');
  if (head.slice(lastColon + 1).includes('.')) {
    const v4 = parseIpv4(head.slice(lastColon + 1));
    if (!v4) return undefined;
    tail = v4;
    head = head.slice(0, lastColon + 1) + '0:0';
  }
  const halves = head.split('::');
  if (halves.length > 2) return undefined;
  const groups = (part: string) => (part === '' ? [] : part.split(':'));
  const left = groups(halves[0]!);
  const right = halves.length === 2 ? groups(halves[1]!) : [];
  const missing = 8 - left.length - right.length;
  if (halves.length === 1 ? missing !== 0 : missing < 0) return undefined;
  const all = [...left, ...Array<string>(Math.max(0, missing)).fill('0'), ...right];
  if (!all.every((group) => /^[0-9a-f]{1,4}$/.test(group))) return undefined;
  const bytes = all.flatMap((group) => [parseInt(group, 16) >> 8, parseInt(group, 16) & 0xff]);
  if (tail.length) bytes.splice(12, 4, ...tail);
  return bytes;
}

type Range = [prefix: Bytes, bits: number, name: string];

const v4 = (cidr: string, name: string): Range => {
  const [address, bits] = cidr.split('/');
  return [parseIpv4(address!)!, Number(bits), name];
};
const v6 = (cidr: string, name: string): Range => {
  const [address, bits] = cidr.split('/');
  return [parseIpv6(address!)!, Number(bits), name];
};

/** IANA special-purpose registries (RFC 6890 and successors): nothing here is a public host. */
const IPV4_RANGES: Range[] = [
  v4('169.254.169.254/32', 'the metadata server'),
  v4('0.0.0.0/8', 'unspecified'),
  v4('10.0.0.0/8', 'private'),
  v4('100.64.0.0/10', 'CGNAT (shared address space)'),
  v4('127.0.0.0/8', 'loopback'),
  v4('169.254.0.0/16', 'link-local'),
  v4('172.16.0.0/12', 'private'),
  v4('192.0.0.0/24', 'IETF protocol assignments'),
  v4('192.0.2.0/24', 'documentation'),
  v4('192.88.99.0/24', 'reserved (6to4 relay)'),
  v4('192.168.0.0/16', 'private'),
  v4('198.18.0.0/15', 'benchmarking'),
  v4('198.51.100.0/24', 'documentation'),
  v4('203.0.113.0/24', 'documentation'),
  v4('224.0.0.0/4', 'multicast'),
  v4('240.0.0.0/4', 'reserved (and broadcast)'),
];

const IPV6_RANGES: Range[] = [
  v6('::/128', 'unspecified'),
  v6('::1/128', 'loopback'),
  v6('100::/64', 'discard-only'),
  v6('2001::/23', 'IETF protocol assignments'),
  v6('2001:db8::/32', 'documentation'),
  v6('64:ff9b:1::/48', 'local-use NAT64'),
  v6('fc00::/7', 'unique-local'),
  v6('fe80::/10', 'link-local'),
  v6('fec0::/10', 'site-local'),
  v6('ff00::/8', 'multicast'),
];

/** IPv6 forms that carry an IPv4 address, and where it sits. */
const EMBEDDED_IPV4: Array<[prefix: Bytes, bits: number, at: number]> = [
  [parseIpv6('::ffff:0:0')!, 96, 12], // IPv4-mapped
  [parseIpv6('::')!, 96, 12], // IPv4-compatible (deprecated)
  [parseIpv6('64:ff9b::')!, 96, 12], // NAT64 well-known prefix
  [parseIpv6('2002::')!, 16, 2], // 6to4
];

function within(bytes: Bytes, prefix: Bytes, bits: number): boolean {
  for (let bit = 0; bit < bits; bit++) {
    const mask = 0x80 >> (bit % 8);
    if ((bytes[bit >> 3]! & mask) !== (prefix[bit >> 3]! & mask)) return false;
  }
  return true;
}

/** Why an IP address is not a public host, or undefined when it is one. Refuses what it cannot parse. */
export function blockedAddress(address: string): string | undefined {
  const four = parseIpv4(address);
  if (four) return IPV4_RANGES.find(([prefix, bits]) => within(four, prefix, bits))?.[2];
  const six = parseIpv6(address);
  if (!six) return 'not an IP address';
  const named = IPV6_RANGES.find(([prefix, bits]) => within(six, prefix, bits))?.[2];
  if (named) return named;
  for (const [prefix, bits, at] of EMBEDDED_IPV4) {
    if (!within(six, prefix, bits)) continue;
    const inner = blockedAddress(six.slice(at, at + 4).join('.'));
    if (inner) return `${inner} (IPv4 inside IPv6)`;
  }
  return undefined;
}

/** Names that only mean something inside a network (or the machine itself). */
export function internalHostname(hostname: string): string | undefined {
  if (hostname === 'localhost' || hostname.endsWith('.localhost')) return 'a loopback name';
  if (hostname === 'metadata.google.internal' || hostname === 'metadata') return 'the metadata server';
  if (!hostname.includes('.')) return 'a single-label (internal) name';
  if (/\.(internal|local|localdomain|home\.arpa|lan|intranet|corp)$/.test(hostname)) return 'an internal name';
  return undefined;
}

const effectivePort = (url: URL) => url.port || (url.protocol === 'https:' ? '443' : '80');

/**
 * Whether `raw` may be called as a webhook; answers the URL and the vetted address to connect to,
 * or throws WebhookRefused saying which rule it breaks.
 */
export async function checkWebhookUrl(raw: string, policy: WebhookPolicy): Promise<CheckedWebhook> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new WebhookRefused('INVALID_WEBHOOK_URL', 'webhook_url is not a URL');
  }
  if (url.protocol !== 'https:' && !(policy.allowHttp && url.protocol === 'http:')) {
    throw new WebhookRefused('INVALID_WEBHOOK_URL', `webhook_url must be https${policy.allowHttp ? ' or http' : ''}`);
  }
  if (url.username || url.password) {
    throw new WebhookRefused('INVALID_WEBHOOK_URL', 'webhook_url must not carry credentials');
  }
  const hostname = url.hostname
    .replace(/^\[|\]$/g, '')
    .replace(/\.$/, '')
    .toLowerCase();
  const allowed = policy.allowList.includes(`${url.hostname.toLowerCase()}:${effectivePort(url)}`);
  const refuse = (why: string) =>
    new WebhookRefused(
      'WEBHOOK_HOST_NOT_ALLOWED',
      `webhook_url host ${url.hostname} is ${why}; only public hosts are called`,
    );

  let addresses: ResolvedAddress[];
  if (isIP(hostname)) {
    addresses = [{ address: hostname, family: isIP(hostname) === 6 ? 6 : 4 }];
  } else {
    const internal = allowed ? undefined : internalHostname(hostname);
    if (internal) throw refuse(internal);
    try {
      addresses = await policy.lookup(hostname);
    } catch {
      throw refuse('not resolvable');
    }
    if (addresses.length === 0) throw refuse('not resolvable');
  }
  if (!allowed) {
    for (const { address } of addresses) {
      const blocked = blockedAddress(address);
      if (blocked) throw refuse(isIP(hostname) ? blocked : `resolving to ${address} (${blocked})`);
    }
  }
  return { url, pinned: addresses[0]! };
}

/** Why `raw` may not be called as a webhook (the refusal's message), or undefined: the check as one answer. */
export async function webhookProblem(raw: string, policy: WebhookPolicy): Promise<string | undefined> {
  try {
    await checkWebhookUrl(raw, policy);
    return undefined;
  } catch (error) {
    if (error instanceof WebhookRefused) return error.message;
    throw error;
  }
}
