/**
 * A loopback server speaking the part of the Cloud Storage JSON API that `@google-cloud/storage`
 * uses for our Storage interface (docs/machine-notes.md lists the calls): object metadata, media download,
 * listing with prefix/delimiter/paging, multipart and resumable uploads, delete. Objects live in
 * memory. Answers carry `md5Hash`/`crc32c` (base64) as GCS does, because the client checks
 * them and deletes an upload it believes corrupt.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { CRC32C } from '@google-cloud/storage';
import { parseMultipart } from '../../local/storage-api.js';

interface StoredObject {
  bucket: string;
  name: string;
  data: Buffer;
  contentType: string;
  generation: string;
  updated: string;
  metadata?: Record<string, string>;
}

interface PendingUpload {
  bucket: string;
  name: string;
  contentType: string;
  chunks: Buffer[];
  received: number;
}

export interface FakeGcs {
  /** For STORAGE_EMULATOR_HOST: `http://127.0.0.1:PORT`. */
  url: string;
  /** Every request seen, `METHOD path?query`, for tests that care which calls were made. */
  requests: string[];
  get(bucket: string, name: string): Buffer | undefined;
  put(bucket: string, name: string, data: Buffer, contentType?: string): void;
  names(bucket: string): string[];
  close(): Promise<void>;
}

function crc32c(data: Buffer): string {
  const crc = new CRC32C();
  crc.update(data);
  return crc.toString();
}

function resource(object: StoredObject): Record<string, unknown> {
  return {
    kind: 'storage#object',
    id: `${object.bucket}/${object.name}/${object.generation}`,
    name: object.name,
    bucket: object.bucket,
    size: String(object.data.length),
    contentType: object.contentType,
    generation: object.generation,
    metageneration: '1',
    timeCreated: object.updated,
    updated: object.updated,
    md5Hash: createHash('md5').update(object.data).digest('base64'),
    crc32c: crc32c(object.data),
    ...(object.metadata ? { metadata: object.metadata } : {}),
  };
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', ...headers });
  res.end(JSON.stringify(body));
}

function sendError(res: ServerResponse, status: number, message: string): void {
  const reason = status === 404 ? 'notFound' : 'invalid';
  sendJson(res, status, { error: { code: status, message, errors: [{ message, domain: 'global', reason }] } });
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function startFakeGcs(): Promise<FakeGcs> {
  const objects = new Map<string, StoredObject>();
  const uploads = new Map<string, PendingUpload>();
  const requests: string[] = [];
  let generation = 1;
  const key = (bucket: string, name: string) => `${bucket}\u0000${name}`;

  const store = (bucket: string, name: string, data: Buffer, contentType?: string, metadata?: unknown) => {
    const object: StoredObject = {
      bucket,
      name,
      data,
      contentType: contentType || 'application/octet-stream',
      generation: String(Date.now() * 1000 + generation++),
      updated: new Date().toISOString(),
      metadata: metadata as Record<string, string> | undefined,
    };
    objects.set(key(bucket, name), object);
    return object;
  };

  const list = (res: ServerResponse, bucket: string, query: URLSearchParams) => {
    const prefix = query.get('prefix') ?? '';
    const delimiter = query.get('delimiter');
    const maxResults = Number(query.get('maxResults') ?? 1000);
    const after = query.get('pageToken') ?? '';
    const items: StoredObject[] = [];
    const prefixes = new Set<string>();
    const names = [...objects.values()]
      .filter((o) => o.bucket === bucket && o.name.startsWith(prefix) && o.name > after)
      .sort((a, b) => (a.name < b.name ? -1 : 1));
    let nextPageToken: string | undefined;
    for (const object of names) {
      if (items.length + prefixes.size >= maxResults) {
        nextPageToken = items[items.length - 1]?.name ?? after;
        break;
      }
      const rest = object.name.slice(prefix.length);
      const cut = delimiter ? rest.indexOf(delimiter) : -1;
      if (delimiter && cut >= 0) prefixes.add(prefix + rest.slice(0, cut + delimiter.length));
      else items.push(object);
    }
    sendJson(res, 200, {
      kind: 'storage#objects',
      items: items.map(resource),
      ...(prefixes.size ? { prefixes: [...prefixes] } : {}),
      ...(nextPageToken ? { nextPageToken } : {}),
    });
  };

  /**
   * A PUT to a session: `Content-Range: bytes A-B/T` (a chunk), `bytes A-*\/T` or `bytes A-*\/*`
   * (the rest of the object in this request) or `bytes *\/T` (a status query). Incomplete → 308
   * with the `Range` received so far, as GCS answers.
   */
  const resumablePut = async (req: IncomingMessage, res: ServerResponse, id: string) => {
    const upload = uploads.get(id);
    if (!upload) return sendError(res, 404, `no upload session ${id}`);
    const body = await readBody(req);
    const range = /^bytes (?:\*|(\d+)-(\d+|\*))\/(\d+|\*)$/.exec(req.headers['content-range'] ?? '');
    const total = range && range[3] !== '*' ? Number(range[3]) : undefined;
    const isQuery = range !== null && range[1] === undefined;
    if (!isQuery) {
      if (range && Number(range[1]) !== upload.received)
        return sendError(res, 400, 'chunk does not continue the upload');
      upload.chunks.push(body);
      upload.received += body.length;
    }
    const complete = total !== undefined ? upload.received >= total : !range || (!isQuery && range[2] === '*');
    if (!complete) {
      res.writeHead(308, upload.received ? { range: `bytes=0-${upload.received - 1}` } : {});
      return res.end();
    }
    uploads.delete(id);
    sendJson(res, 200, resource(store(upload.bucket, upload.name, Buffer.concat(upload.chunks), upload.contentType)));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = req.method ?? 'GET';
    requests.push(`${method} ${url.pathname}${url.search}`);
    const query = url.searchParams;
    // The client addresses the JSON API with or without /storage/v1 when STORAGE_EMULATOR_HOST is set.
    const path = url.pathname.replace(/^\/storage\/v1(?=\/b\/)/, '');

    const upload = /^\/upload\/storage\/v1\/b\/([^/]+)\/o$/.exec(url.pathname);
    if (upload) {
      const bucket = decodeURIComponent(upload[1] ?? '');
      const uploadType = query.get('uploadType');
      if (method === 'POST' && uploadType === 'multipart') {
        const { metadata, media } = parseMultipart(await readBody(req), req.headers['content-type'] ?? '');
        const name = (metadata.name as string | undefined) ?? query.get('name');
        if (!name) return sendError(res, 400, 'object name missing');
        const precondition = query.get('ifGenerationMatch');
        if (precondition !== null && (objects.get(key(bucket, name))?.generation ?? '0') !== precondition) {
          return sendError(res, 412, 'At least one of the pre-conditions you specified did not hold.');
        }
        return sendJson(
          res,
          200,
          resource(store(bucket, name, media, metadata.contentType as string, metadata.metadata)),
        );
      }
      if (method === 'POST' && uploadType === 'resumable') {
        const body = await readBody(req);
        const metadata = (body.length ? JSON.parse(body.toString('utf8')) : {}) as Record<string, unknown>;
        const name = (metadata.name as string | undefined) ?? query.get('name');
        if (!name) return sendError(res, 400, 'object name missing');
        const id = randomUUID();
        const contentType = (metadata.contentType as string | undefined) ?? req.headers['x-upload-content-type'];
        uploads.set(id, { bucket, name, contentType: String(contentType ?? ''), chunks: [], received: 0 });
        const location = `http://${req.headers.host}/upload/storage/v1/b/${upload[1]}/o?uploadType=resumable&upload_id=${id}`;
        res.writeHead(200, { location });
        return res.end();
      }
      if (method === 'PUT' && uploadType === 'resumable' && query.get('upload_id')) {
        return resumablePut(req, res, query.get('upload_id') ?? '');
      }
      return sendError(res, 400, `unsupported upload ${method} ${uploadType}`);
    }

    const listing = /^\/b\/([^/]+)\/o$/.exec(path);
    if (listing && method === 'GET') return list(res, decodeURIComponent(listing[1] ?? ''), query);

    const single = /^\/b\/([^/]+)\/o\/(.+)$/.exec(path);
    if (single) {
      const bucket = decodeURIComponent(single[1] ?? '');
      const name = decodeURIComponent(single[2] ?? '');
      const object = objects.get(key(bucket, name));
      if (!object) return sendError(res, 404, `No such object: ${bucket}/${name}`);
      if (method === 'DELETE') {
        objects.delete(key(bucket, name));
        res.writeHead(204);
        return res.end();
      }
      if (method === 'GET' && query.get('alt') === 'media') {
        const meta = resource(object);
        res.writeHead(200, {
          'content-type': object.contentType,
          'content-length': String(object.data.length),
          'x-goog-hash': `crc32c=${String(meta.crc32c)},md5=${String(meta.md5Hash)}`,
          'x-goog-generation': object.generation,
          'x-goog-stored-content-encoding': 'identity',
        });
        return res.end(object.data);
      }
      if (method === 'GET') return sendJson(res, 200, resource(object));
    }
    sendError(res, 400, `unsupported request ${method} ${url.pathname}`);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: Error) => sendError(res, 400, error.message));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('fake GCS has no address');

  return {
    url: `http://127.0.0.1:${address.port}`,
    requests,
    get: (bucket, name) => objects.get(key(bucket, name))?.data,
    put: (bucket, name, data, contentType) => void store(bucket, name, data, contentType),
    names: (bucket) =>
      [...objects.values()]
        .filter((o) => o.bucket === bucket)
        .map((o) => o.name)
        .sort(),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
