/**
 * Which inputs a caller may name (pure). In the cloud only objects under the configured input
 * locations, and there only in the caller's own scope; `file://` URIs and paths name the
 * functions' and jobs' own disks, so they are accepted only with AUTH_MODE=local. Nothing here
 * looks at the object: the answer is the same whether it exists or not.
 */
import { HttpError } from '../http/errors.js';
import { locate } from '../../lib/locations.js';
import { callerScope } from './scope.js';

export interface InputRules {
  mode: 'google' | 'local';
  /** `gs://BUCKET/PREFIX/` folders; none: any gs:// object in local mode, none in the cloud. */
  locations: readonly string[];
}

export function checkInput(uri: string, caller: string, rules: InputRules): void {
  if (!uri.startsWith('gs://')) {
    if (rules.mode === 'local') return;
    throw new HttpError(
      400,
      'INPUT_NOT_ALLOWED',
      'body.input.uri must be a gs:// object: file:// URIs and paths are accepted only with AUTH_MODE=local',
    );
  }
  if (rules.locations.length === 0) {
    if (rules.mode === 'local') return;
    throw new HttpError(400, 'INPUT_NOT_ALLOWED', 'no input locations are configured (INPUT_LOCATIONS)');
  }
  const found = locate(uri, rules.locations);
  if (!found) {
    throw new HttpError(
      400,
      'INPUT_NOT_ALLOWED',
      `body.input.uri must be an object under an upload location (${rules.locations.join(', ')})`,
    );
  }
  const scope = callerScope(caller);
  if (!found.rest.startsWith(`${scope}/`)) {
    throw new HttpError(
      403,
      'INPUT_NOT_OWNED',
      `body.input.uri must be one of your own uploads, under ${found.location}${scope}/ (see POST /uploads)`,
    );
  }
}
