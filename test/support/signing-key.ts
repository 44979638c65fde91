/**
 * A service-account key file made on the spot, so V4 signed URLs are signed offline in tests and in the
 * local stack. `remove` deletes it: a private key must not outlive the process that made it.
 */
import { createHash, createPublicKey, createVerify, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function writeSigningKey(): { file: string; email: string; remove: () => void } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const email = 'status-signer@splatflow-test.iam.gserviceaccount.com';
  const dir = mkdtempSync(join(tmpdir(), 'splatflow-key-'));
  const file = join(dir, 'key.json');
  writeFileSync(
    file,
    JSON.stringify({
      type: 'service_account',
      project_id: 'splatflow-test',
      client_email: email,
      private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
    }),
    { mode: 0o600 },
  );
  return { file, email, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Whether a V4 signed URL (for `method`, host header only, unsigned payload) carries a valid
 * signature by the key in `keyFile`: the check Cloud Storage makes, per its canonical-request rules.
 */
export function validV4Signature(url: string, keyFile: string, method = 'GET'): boolean {
  const u = new URL(url);
  const signature = u.searchParams.get('X-Goog-Signature') ?? '';
  const encode = (s: string) =>
    encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  const query = [...u.searchParams.entries()]
    .filter(([name]) => name !== 'X-Goog-Signature')
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([name, value]) => `${encode(name)}=${encode(value)}`)
    .join('&');
  const canonical = [method, u.pathname, query, `host:${u.host}`, '', 'host', 'UNSIGNED-PAYLOAD'].join('\n');
  const scope = (u.searchParams.get('X-Goog-Credential') ?? '').split('/').slice(1).join('/');
  const toSign = [
    'GOOG4-RSA-SHA256',
    u.searchParams.get('X-Goog-Date'),
    scope,
    createHash('sha256').update(canonical).digest('hex'),
  ].join('\n');
  const { private_key: privateKey } = JSON.parse(readFileSync(keyFile, 'utf8')) as { private_key: string };
  return createVerify('RSA-SHA256').update(toSign).verify(createPublicKey(privateKey), Buffer.from(signature, 'hex'));
}
