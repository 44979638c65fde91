/**
 * A loopback HTTP pass-through that records every request it forwards (method, path, JSON body) in
 * arrival order, so a test can see the sequence of calls a real client made to a real service.
 */
import { createServer } from 'node:http';

export interface RecordedRequest {
  method: string;
  path: string;
  body: unknown;
}

export interface RecordingProxy {
  url: string;
  requests: RecordedRequest[];
  /**
   * From the first request `starts` matches, for `ms`, answers every request 503 with Retry-After and
   * forwards none, as the queue answers while a store behind it is unreachable (functions/http/handler.ts).
   */
  outage(starts: (request: RecordedRequest) => boolean, ms: number): void;
  close(): Promise<void>;
}

/** `target` is read per request, so the proxy may start before the service it fronts. */
export async function recordingProxy(target: () => string): Promise<RecordingProxy> {
  const requests: RecordedRequest[] = [];
  let planned: { starts: (request: RecordedRequest) => boolean; ms: number } | undefined;
  let downUntil = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const request = {
        method: req.method ?? '',
        path: req.url ?? '',
        body: text ? (JSON.parse(text) as unknown) : undefined,
      };
      requests.push(request);
      if (planned?.starts(request)) {
        downUntil = Date.now() + planned.ms;
        planned = undefined;
      }
      if (Date.now() < downUntil) {
        res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '5' });
        return void res.end('{"error":{"code":"UNAVAILABLE","message":"a backing store is unreachable; retry later"}}');
      }
      fetch(target() + (req.url ?? ''), {
        method: req.method,
        headers: { 'content-type': req.headers['content-type'] ?? 'application/json' },
        body: text || undefined,
      })
        .then(async (response) => {
          res.writeHead(response.status, { 'content-type': response.headers.get('content-type') ?? 'text/plain' });
          res.end(Buffer.from(await response.arrayBuffer()));
        })
        .catch(() => {
          res.writeHead(502).end();
        });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('proxy has no address');
  return {
    url: `http://127.0.0.1:${address.port}`,
    requests,
    outage: (starts, ms) => {
      planned = { starts, ms };
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
