/**
 * The local stack's servers listen on loopback only, but a page of any site can still reach them by
 * DNS rebinding (its own name resolving to 127.0.0.1): the browser then sends that name as `Host`.
 * Only the loopback names with the server's own port are answered (as the viewer server does).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';

/** The `Host` values a loopback server on `port` answers. */
export const loopbackHosts = (port: number): Set<string> =>
  new Set(['127.0.0.1', 'localhost', '[::1]'].map((host) => `${host}:${port}`));

/** Whether a request names this loopback server as its `Host`. */
export const fromLoopbackHost = (req: IncomingMessage, port: number): boolean =>
  loopbackHosts(port).has((req.headers.host ?? '').toLowerCase());

/**
 * Puts the Host check in front of a listening server's handlers (the Functions Framework's, the local
 * API's): another Host is answered 403 and reaches nothing else.
 */
export function refuseForeignHosts(server: Server): void {
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('the server is not listening');
  const handlers = server.listeners('request') as Array<(req: IncomingMessage, res: ServerResponse) => void>;
  server.removeAllListeners('request');
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (fromLoopbackHost(req, address.port)) {
      for (const handler of handlers) handler(req, res);
      return;
    }
    res.writeHead(403, { 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify({ error: { code: 403, message: 'unexpected Host header', status: 'PERMISSION_DENIED' } }));
  });
}
