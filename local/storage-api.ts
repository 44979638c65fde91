/**
 * The part of the Cloud Storage JSON API the functions and the CLI use, served by the local API over the
 * local bucket, so the real `@google-cloud/storage` client (`STORAGE_EMULATOR_HOST`) works against it:
 * - `GET [/storage/v1]/b/{bucket}/o/{name}` metadata, `?alt=media` the body;
 * - `POST /upload/storage/v1/b/{bucket}/o?uploadType=multipart` (metadata part, then media) with
 *   `ifGenerationMatch` answering 412 when it does not hold
 *   (https://cloud.google.com/storage/docs/json_api/v1/objects/insert);
 * - `GET /{bucket}/{name}?X-Goog-Signature=…` a V4 signed download, and `PUT` a signed upload, checked as GCS
 *   checks them (signature with its signed headers, expiry; an upload's generation and length conditions):
 *   what `GET /status` and `POST /uploads` hand out locally.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { KeyObject } from 'node:crypto';
import {
  PreconditionFailedError,
  TooLargeError,
  type LocalBucket,
  type StoredObject,
  type WriteOptions,
} from './bucket.js';
import { signedUrlExpiry, validV4Signature } from './signed-urls.js';

// The client leaves out /storage/v1 when STORAGE_EMULATOR_HOST is set.
const OBJECT = /^(?:\/storage\/v1)?\/b\/([^/]+)\/o\/(.+)$/;
const MULTIPART = /^\/upload\/storage\/v1\/b\/([^/]+)\/o$/;
const SIGNED = /^\/([a-z0-9][a-z0-9._-]{1,220}[a-z0-9])\/(.+)$/;

/** GCS's error shape. */
function fail(res: ServerResponse, code: number, message: string): void {
  const reason = { 400: 'invalid', 403: 'forbidden', 404: 'notFound', 412: 'conditionNotMet', 413: 'tooLarge' }[code];
  res.writeHead(code, { 'content-type': 'application/json; charset=UTF-8' });
  res.end(JSON.stringify({ error: { code, message, errors: [{ message, domain: 'global', reason }] } }));
}

function resource(object: StoredObject): Record<string, unknown> {
  return {
    kind: 'storage#object',
    id: `${object.bucket}/${object.name}/${object.generation}`,
    metageneration: '1',
    updated: object.timeCreated,
    ...object,
  };
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new TooLargeError(`request body over ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** `multipart/related`: a JSON metadata part, then the media part (how the client sends small objects). */
export function parseMultipart(
  body: Buffer,
  contentType: string,
): { metadata: Record<string, unknown>; media: Buffer } {
  const boundary = /boundary="?([^";]+)"?/.exec(contentType)?.[1];
  if (!boundary) throw new Error('multipart upload without a boundary');
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: Buffer[] = [];
  let start = body.indexOf(delimiter);
  while (start >= 0) {
    const next = body.indexOf(delimiter, start + delimiter.length);
    if (next < 0) break;
    parts.push(body.subarray(start + delimiter.length, next));
    start = next;
  }
  const [meta, media] = parts.map((part) => {
    const split = part.indexOf('\r\n\r\n');
    return part.subarray(split + 4, part.length - 2); // drop the CRLF before the next delimiter
  });
  if (!meta || !media) throw new Error('multipart upload needs a metadata and a media part');
  return { metadata: JSON.parse(meta.toString('utf8')) as Record<string, unknown>, media };
}

const strings = (value: unknown): Record<string, string> | undefined =>
  value && typeof value === 'object'
    ? Object.fromEntries(Object.entries(value).map(([key, item]) => [key, String(item)]))
    : undefined;

const conditionalSize = (req: IncomingMessage) => req.headers['x-goog-content-length-range'] !== undefined;

/**
 * The XML API's conditions on a PUT, as GCS applies them
 * (https://cloud.google.com/storage/docs/xml-api/reference-headers): `x-goog-if-generation-match` (0: the
 * object must not exist yet; 412 otherwise) and `x-goog-content-length-range: MIN,MAX` (a body of another
 * size is refused with 400, and nothing is stored).
 */
function uploadConditions(req: IncomingMessage, limit: number): Pick<WriteOptions, 'maxBytes' | 'ifGenerationMatch'> {
  const generation = req.headers['x-goog-if-generation-match'];
  const range = req.headers['x-goog-content-length-range'];
  if (Array.isArray(range)) throw new Error('more than one x-goog-content-length-range');
  let maxBytes = limit;
  if (range !== undefined) {
    const [min, max] = range.split(',').map((bound) => Number(bound.trim()));
    if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max) || min! < 0 || max! < min!) {
      throw new Error(`invalid x-goog-content-length-range: ${range}`);
    }
    const length = Number(req.headers['content-length']);
    // A declared length is checked before the body is read; a streamed body is cut off at the bound.
    if (req.headers['content-length'] !== undefined && (length < min! || length > max!)) {
      throw new TooLargeError(`the body is ${length} bytes; the signed range is ${range}`);
    }
    maxBytes = Math.min(limit, max!);
  }
  return { maxBytes, ...(typeof generation === 'string' ? { ifGenerationMatch: generation } : {}) };
}

/** Serves the routes above; answers false for a request that is not one of them. */
export function storageRoutes(bucket: LocalBucket, options: { signingKey?: KeyObject; maxBodyBytes: number }) {
  /** The object's body with its generation and hashes (the client checks them), or GCS's 404. */
  const sendObject = async (res: ServerResponse, b: string, name: string, alt: 'media' | 'json') => {
    const found = await bucket.read(b, name);
    if (!found) return fail(res, 404, `No such object: ${b}/${name}`);
    const { object, body } = found;
    if (alt === 'json') {
      body.destroy();
      res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8' });
      return res.end(JSON.stringify(resource(object)));
    }
    res.writeHead(200, {
      'content-type': object.contentType,
      'content-length': object.size,
      'x-goog-generation': object.generation,
      'x-goog-hash': `crc32c=${object.crc32c},md5=${object.md5Hash}`,
      'x-goog-stored-content-encoding': 'identity',
    });
    try {
      await pipeline(body, res);
    } catch (error) {
      // The client stopped reading (it has what it wanted, or gave up): not the server's failure.
      if ((error as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') throw error;
    }
  };

  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> => {
    const method = req.method ?? 'GET';
    const single = OBJECT.exec(url.pathname);
    if (single && method === 'GET') {
      const [name, b] = [decodeURIComponent(single[2]!), decodeURIComponent(single[1]!)];
      await sendObject(res, b, name, url.searchParams.get('alt') === 'media' ? 'media' : 'json');
      return true;
    }
    const upload = MULTIPART.exec(url.pathname);
    if (upload && method === 'POST' && url.searchParams.get('uploadType') === 'multipart') {
      try {
        const body = await readBody(req, options.maxBodyBytes);
        const { metadata, media } = parseMultipart(body, req.headers['content-type'] ?? '');
        const name = (metadata.name as string | undefined) ?? url.searchParams.get('name');
        if (!name) return (fail(res, 400, 'object name missing'), true);
        const precondition = url.searchParams.get('ifGenerationMatch');
        const object = await bucket.write(decodeURIComponent(upload[1]!), name, media, {
          contentType: typeof metadata.contentType === 'string' ? metadata.contentType : undefined,
          metadata: strings(metadata.metadata),
          ...(precondition === null ? {} : { ifGenerationMatch: precondition }),
        });
        res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8' });
        res.end(JSON.stringify(resource(object)));
      } catch (error) {
        if (error instanceof PreconditionFailedError) fail(res, 412, error.message);
        else if (error instanceof TooLargeError) fail(res, 413, error.message);
        else fail(res, 400, (error as Error).message);
      }
      return true;
    }
    const signed = SIGNED.exec(url.pathname);
    if (signed && (method === 'GET' || method === 'PUT') && url.searchParams.has('X-Goog-Signature')) {
      const full = `http://${req.headers.host ?? '127.0.0.1'}${req.url ?? ''}`;
      const expiry = signedUrlExpiry(full);
      const [b, name] = [signed[1]!, decodeURIComponent(signed[2]!)];
      if (!options.signingKey || !validV4Signature(full, options.signingKey, method, req.headers)) {
        fail(res, 403, 'The request signature we calculated does not match the signature you provided.');
      } else if (!expiry || expiry.getTime() < Date.now()) {
        fail(res, 400, 'Request has expired');
      } else if (method === 'GET') {
        await sendObject(res, b, name, 'media');
      } else {
        // A signed upload (POST /uploads answers these): the body becomes the object, as GCS's XML API PUT does,
        // with its conditions (uploadConditions).
        try {
          const conditions = uploadConditions(req, options.maxBodyBytes);
          await bucket.write(b, name, req, {
            contentType: req.headers['content-type'] ?? 'application/octet-stream',
            ...conditions,
          });
          res.writeHead(200, { 'content-length': '0' });
          res.end();
        } catch (error) {
          if (error instanceof TooLargeError) fail(res, conditionalSize(req) ? 400 : 413, error.message);
          else if (error instanceof PreconditionFailedError) fail(res, 412, error.message);
          else fail(res, 400, (error as Error).message);
        }
      }
      return true;
    }
    return false;
  };
}
