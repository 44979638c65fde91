/**
 * `uploads` (POST /uploads): a V4 signed URL the caller PUTs one file to, at
 * `<first input location><caller's scope>/<session_id>/<file_name>`. The finalized object then
 * starts a request owned by that scope (onUpload), and the caller may name it in a trigger call. The URL
 * is good for one PUT of at most UPLOAD_MAX_BYTES with the `headers` it answers (signed-urls.ts).
 */
import type { Request, Response } from '@google-cloud/functions-framework';
import { Ajv } from 'ajv';
import { contentTypeOf } from '../../lib/content-types.js';
import type { Logger } from '../../lib/log.js';
import { jsonBody } from '../http/body.js';
import { HttpError } from '../http/errors.js';
import { httpHandler } from '../http/handler.js';
import type { SignUploadUrl } from '../storage/signed-urls.js';
import type { IdentifyCaller } from './identity.js';
import type { AdmissionGate } from './gate.js';
import { uploadSchema } from './schemas.js';
import { callerScope } from './scope.js';

const validateUpload = new Ajv({ allErrors: false }).compile(uploadSchema);

export interface UploadRouteDeps {
  identify: IdentifyCaller;
  gate: AdmissionGate;
  sign: SignUploadUrl;
  /** Where new uploads go; undefined: no input locations are configured. */
  location: string | undefined;
  /** The largest upload the URL accepts (UPLOAD_MAX_BYTES): Cloud Storage refuses a larger body. */
  maxBytes: number;
  log: Logger;
}

export function uploadsRoute(deps: UploadRouteDeps) {
  return httpHandler(deps.log, async (req: Request, res: Response) => {
    const path = req.path.replace(/\/+$/, '') || '/';
    if (path !== '/' && path !== '/uploads')
      throw new HttpError(404, 'UNKNOWN_ROUTE', `no route ${req.method} ${path}`);
    if (req.method !== 'POST') {
      throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${path}`, { Allow: 'POST' });
    }
    const caller = await deps.identify(req);
    const body = jsonBody(req, validateUpload);
    if (deps.location === undefined) {
      throw new HttpError(400, 'UPLOADS_NOT_CONFIGURED', 'no input location is configured (INPUT_LOCATIONS)');
    }
    await deps.gate.enforce(caller);
    const uri = `${deps.location}${callerScope(caller)}/${body.session_id}/${body.file_name}`;
    const { url, expiresAt, headers } = await deps.sign(uri, {
      contentType: contentTypeOf(body.file_name),
      maxBytes: deps.maxBytes,
    });
    deps.log.info('upload URL signed', { uri });
    res.status(201).json({
      uri,
      upload_url: url,
      method: 'PUT',
      headers,
      max_bytes: deps.maxBytes,
      expires_at: expiresAt.toISOString(),
    });
  });
}
