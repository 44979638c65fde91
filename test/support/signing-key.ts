import { readFileSync } from 'node:fs';
import { validV4Signature as validSignature } from '../../local/signed-urls.js';

/**
 * Whether a V4 signed URL (for `method`, sent with `headers`) carries a valid signature by the key in
 * `keyFile` (Cloud Storage's check).
 */
export function validV4Signature(
  url: string,
  keyFile: string,
  method = 'GET',
  headers: Record<string, string> = {},
): boolean {
  const { private_key: privateKey } = JSON.parse(readFileSync(keyFile, 'utf8')) as { private_key: string };
  return validSignature(url, privateKey, method, headers);
}
