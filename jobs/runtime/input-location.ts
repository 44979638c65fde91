/**
 * The stage-side check of a request's input: where SPLATFLOW_INPUT_LOCATIONS is set (Terraform
 * sets it on every cloud job, from the same list the functions admit), the input must be an
 * object under one of those `gs://BUCKET/PREFIX/` folders; a path or `file://` URI would read the
 * job's own disk. Unset (local runs, `npm run reconstruct`), any input is read. Checked before the
 * input is touched, so a refusal says nothing about whether it exists.
 */
import { ConfigError } from '../../lib/config.js';
import { locate, parseLocations } from '../../lib/locations.js';
import { InputRefused } from './errors.js';

export function checkInputLocation(uri: string, env: Record<string, string | undefined>): void {
  let locations: string[];
  try {
    locations = parseLocations(env.SPLATFLOW_INPUT_LOCATIONS);
  } catch (error) {
    throw new ConfigError(`SPLATFLOW_INPUT_LOCATIONS: ${(error as Error).message}`);
  }
  if (locations.length === 0) return;
  const segments = uri.split('/');
  if (!locate(uri, locations) || segments.some((segment) => segment === '.' || segment === '..')) {
    throw new InputRefused(`the input ${uri} is not under an allowed input location (${locations.join(', ')})`);
  }
}
