/**
 * Serves a finished request's folder on loopback so that a browser opens its viewer page
 * (`export/viewer/index.html`, written by the export stage) and the files that page reads relative
 * to the request folder (`export/scene.spz`, `mesh/mesh.glb`). Read-only: GET and HEAD of files
 * inside the folder (symbolic links followed, and refused when they lead out of it), nothing else; a Host
 * check keeps other sites' pages (DNS rebinding) out.
 */
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, resolve, sep } from 'node:path';
import { VIEWER_FILES } from '../jobs/export/viewer-data.js';
import { fromLoopbackHost } from './loopback-host.js';

export class ViewerServerError extends Error {
  override name = 'ViewerServerError';
}

export interface ViewerServer {
  /** The viewer page's URL. */
  url: string;
  close(): Promise<void>;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.json': 'application/json',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.glb': 'model/gltf-binary',
  '.sog': 'application/zip',
};

/** The file under `root` a request path names, or undefined when it would leave the folder. */
export function fileFor(root: string, urlPath: string): string | undefined {
  let path: string;
  try {
    path = decodeURIComponent(urlPath);
  } catch {
    return undefined;
  }
  if (path.includes('\0')) return undefined;
  const file = resolve(root, '.' + path);
  return file.startsWith(root + sep) ? file : undefined;
}

/**
 * The file a request path names once symbolic links are followed, or undefined when it is not inside
 * `realRoot` (itself resolved): a link in the results folder to a file outside it is not served.
 */
async function realFileFor(realRoot: string, urlPath: string): Promise<string | undefined> {
  const file = fileFor(realRoot, urlPath);
  const real = file === undefined ? undefined : await realpath(file).catch(() => undefined);
  return real?.startsWith(realRoot + sep) ? real : undefined;
}

function answer(res: ServerResponse, code: number, text: string): void {
  res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' });
  res.end(text + '\n');
}

/**
 * Serves `folder` (a request folder: the one holding `export/`) on 127.0.0.1; `port` 0 or absent
 * takes a free one. Refuses a folder without a viewer page.
 */
export async function serveViewer(folder: string, options: { port?: number } = {}): Promise<ViewerServer> {
  const root = resolve(folder);
  const realRoot = await realpath(root).catch(() => root);
  const page = join(root, VIEWER_FILES.page);
  if (
    !(await stat(page).then(
      (s) => s.isFile(),
      () => false,
    ))
  ) {
    throw new ViewerServerError(`no viewer page at ${page}: the request's export stage has not finished`);
  }
  let port = 0; // known once it listens
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    if (!fromLoopbackHost(req, port)) return answer(res, 403, 'unexpected Host header');
    if (req.method !== 'GET' && req.method !== 'HEAD') return answer(res, 405, 'only GET and HEAD');
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path === '/') {
      res.writeHead(302, { location: `/${VIEWER_FILES.page}` }).end();
      return;
    }
    const file = await realFileFor(realRoot, path);
    const info = file === undefined ? undefined : await stat(file).catch(() => undefined);
    if (!file || !info?.isFile()) return answer(res, 404, 'not found');
    res.writeHead(200, {
      'content-type': CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
      'content-length': info.size,
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    });
    if (req.method === 'HEAD') return res.end();
    createReadStream(file)
      .on('error', () => res.destroy())
      .pipe(res);
  };
  const server = createServer((req, res) => {
    handle(req, res).catch(() => answer(res, 500, 'cannot read the file'));
  });
  await new Promise<void>((ready, fail) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      fail(
        new ViewerServerError(`cannot serve the viewer on port ${options.port ?? 0}: ${error.code ?? error.message}`),
      ),
    );
    server.listen(options.port ?? 0, '127.0.0.1', ready);
  });
  ({ port } = server.address() as AddressInfo);
  return {
    url: `http://127.0.0.1:${port}/${VIEWER_FILES.page}`,
    close: () =>
      new Promise<void>((done) => {
        server.close(() => done());
        server.closeAllConnections();
      }),
  };
}
