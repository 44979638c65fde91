/**
 * A service-account key file made on the spot, so V4 signed URLs are signed offline in tests and in the
 * local stack. `remove` deletes it: a private key must not outlive the process that made it.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validV4Signature as validSignature } from '../../local/signed-urls.js';

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

/** Whether a V4 signed URL (for `method`) carries a valid signature by the key in `keyFile` (Cloud Storage's check). */
export function validV4Signature(url: string, keyFile: string, method = 'GET'): boolean {
  const { private_key: privateKey } = JSON.parse(readFileSync(keyFile, 'utf8')) as { private_key: string };
  return validSignature(url, privateKey, method);
}
