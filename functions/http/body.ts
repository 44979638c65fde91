/**
 * Request bodies. The Functions Framework parses bodies before user code runs and answers a body
 * it cannot parse (malformed JSON, bad charset) with an HTML page from Express. Its parsers come
 * from `body-parser`; `captureBodyErrors` wraps them so that such a failure is handed to our
 * handler instead, which answers it in our JSON error shape. It must run before the framework
 * builds its server, that is when the functions module is loaded.
 */
import { createRequire } from 'node:module';
import type { Request } from '@google-cloud/functions-framework';
import type { ValidateFunction } from 'ajv';
import { HttpError } from './errors.js';

type Middleware = (req: unknown, res: unknown, next: (error?: unknown) => void) => void;
type ParserFactory = (options?: unknown) => Middleware;

const BODY_ERROR = Symbol('bodyError');
type WithBodyError = Request & { [BODY_ERROR]?: { status?: number; type?: string; message: string } };

let captured = false;

export function captureBodyErrors(): void {
  if (captured) return;
  captured = true;
  const frameworkRequire = createRequire(createRequire(import.meta.url).resolve('@google-cloud/functions-framework'));
  const parsers = frameworkRequire('body-parser') as Record<string, ParserFactory>;
  for (const name of ['json', 'text', 'urlencoded', 'raw']) {
    const factory = parsers[name];
    if (!factory) continue;
    parsers[name] = (options) => {
      const parse = factory(options);
      return (req, res, next) =>
        parse(req, res, (error?: unknown) => {
          if (error) (req as WithBodyError)[BODY_ERROR] = error as WithBodyError[typeof BODY_ERROR];
          next();
        });
    };
  }
}

export const MAX_BODY_BYTES = 64 * 1024;

/** The body checked for size, parse errors, content type and schema; a clear 4xx otherwise. */
export function jsonBody<T>(req: Request, validate: ValidateFunction<T>): T {
  const size = req.rawBody?.length ?? Number(req.headers['content-length'] ?? 0);
  if (size > MAX_BODY_BYTES) {
    throw new HttpError(413, 'BODY_TOO_LARGE', `request body is ${size} bytes; the limit is ${MAX_BODY_BYTES}`);
  }
  const parseError = (req as WithBodyError)[BODY_ERROR];
  if (parseError) {
    const status = parseError.status && parseError.status >= 400 && parseError.status < 500 ? parseError.status : 400;
    throw new HttpError(status, 'MALFORMED_BODY', `request body could not be read: ${parseError.message}`);
  }
  if (!req.is('application/json')) {
    throw new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', 'request body must be application/json');
  }
  if (!validate(req.body)) {
    const first = validate.errors?.[0];
    const where = first?.instancePath ? `body${first.instancePath.replace(/\//g, '.')}` : 'body';
    const extra = (first?.params as { additionalProperty?: string } | undefined)?.additionalProperty;
    const message = extra ? `${where} has unknown field "${extra}"` : `${where} ${first?.message ?? 'is invalid'}`;
    throw new HttpError(400, 'INVALID_BODY', message);
  }
  return req.body;
}
