/**
 * A service-account key file made on the spot, so V4 signed URLs are signed offline in the local stack
 * and in tests. `remove` deletes it: a private key must not outlive the process that made it.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
