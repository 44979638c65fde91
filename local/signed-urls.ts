/**
 * V4 signed URL checks as Cloud Storage makes them (GET or the signed method, the headers
 * `X-Goog-SignedHeaders` names, unsigned payload): https://cloud.google.com/storage/docs/authentication/canonical-requests.
 * The local stack's storage API serves signed downloads and uploads only when the signature is valid and
 * the URL has not expired.
 */
import { createHash, createPublicKey, createVerify, type KeyObject } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

const strict = (s: string) =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/**
 * Whether the URL carries a valid signature by `key` (a public key, or the private key's PEM) for a
 * request with `headers`: each signed header must be sent with the value it was signed with.
 */
export function validV4Signature(
  url: string,
  key: KeyObject | string,
  method = 'GET',
  headers: IncomingHttpHeaders = {},
): boolean {
  const u = new URL(url);
  const signature = u.searchParams.get('X-Goog-Signature') ?? '';
  const query = [...u.searchParams.entries()]
    .filter(([name]) => name !== 'X-Goog-Signature')
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([name, value]) => `${strict(name)}=${strict(value)}`)
    .join('&');
  const signedHeaders = u.searchParams.get('X-Goog-SignedHeaders') ?? 'host';
  const canonicalHeaders: string[] = [];
  for (const name of signedHeaders.split(';')) {
    // The client signs the host without its port.
    const value = name === 'host' ? u.hostname : headers[name];
    if (typeof value !== 'string') return false;
    canonicalHeaders.push(`${name}:${value.trim().replace(/\s{2,}/g, ' ')}\n`);
  }
  const canonical = [method, u.pathname, query, canonicalHeaders.join(''), signedHeaders, 'UNSIGNED-PAYLOAD'].join(
    '\n',
  );
  const scope = (u.searchParams.get('X-Goog-Credential') ?? '').split('/').slice(1).join('/');
  const toSign = [
    'GOOG4-RSA-SHA256',
    u.searchParams.get('X-Goog-Date'),
    scope,
    createHash('sha256').update(canonical).digest('hex'),
  ].join('\n');
  const publicKey = typeof key === 'string' ? createPublicKey(key) : key;
  return createVerify('RSA-SHA256').update(toSign).verify(publicKey, Buffer.from(signature, 'hex'));
}

/** When a V4 signed URL stops being valid (`X-Goog-Date` + `X-Goog-Expires`), or undefined if malformed. */
export function signedUrlExpiry(url: string): Date | undefined {
  const u = new URL(url);
  const date = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(u.searchParams.get('X-Goog-Date') ?? '');
  const seconds = Number(u.searchParams.get('X-Goog-Expires'));
  if (!date || !Number.isInteger(seconds)) return undefined;
  const [, y, mo, d, h, mi, s] = date.map(Number);
  return new Date(Date.UTC(y!, mo! - 1, d, h, mi, s) + seconds * 1000);
}
