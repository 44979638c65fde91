/**
 * Errors the Functions Framework's Express app raises before a function runs — a path with bad
 * %-encoding (`/status/%ZZ`), a CloudEvent its middleware cannot convert — end in Express's final
 * handler, which answers an HTML page (with a stack trace outside production). `answerFrameworkErrors`
 * gives every server the framework builds a final handler of its own instead:
 * - HTTP functions answer the JSON error shape: the error's 4xx, or a logged 500;
 * - CloudEvent functions acknowledge (204) with the reason logged: Eventarc redelivers any
 *   delivery not answered with a 2xx (https://cloud.google.com/eventarc/docs/retry-events), and
 *   redelivering a malformed event can never make it valid.
 * Like `captureBodyErrors`, it must run when the functions module is loaded, before the framework
 * builds its server (the framework calls `getServer` through its module's exports each time).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Logger } from '../../lib/log.js';

type Next = (error?: unknown) => void;
type App = (req: IncomingMessage, res: ServerResponse, next: Next) => void;
type GetServer = (userFunction: unknown, options: { signatureType: string }) => Server;

function statusOf(error: unknown): number {
  const status =
    (error as { status?: unknown; statusCode?: unknown } | null)?.status ??
    (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' && status >= 400 && status < 500 ? status : 500;
}

function reply(res: ServerResponse, status: number, body?: unknown): void {
  if (res.headersSent) return void res.end();
  if (body === undefined) {
    res.writeHead(status).end();
    return;
  }
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
}

/** The final handler for one server: `next()` without an error means no route matched. */
export function finalHandler(signatureType: string, log: Logger) {
  return (req: IncomingMessage, res: ServerResponse, error?: unknown): void => {
    const where = { method: req.method, path: (req.url ?? '').split('?')[0] };
    if (error === undefined) {
      reply(res, 404, { error: { code: 'UNKNOWN_ROUTE', message: `no route ${req.method} ${where.path}` } });
      return;
    }
    const status = statusOf(error);
    const reason = error instanceof Error ? error.message : 'the request could not be read';
    if (signatureType === 'cloudevent' || signatureType === 'event') {
      log.error('malformed event acknowledged; redelivery cannot fix it', { ...where, reason });
      reply(res, 204);
      return;
    }
    if (status === 500) {
      log.error('framework error', { ...where, error });
      reply(res, 500, { error: { code: 'INTERNAL', message: 'internal error' } });
      return;
    }
    log.warning('request refused before the function ran', { ...where, status, reason });
    reply(res, status, { error: { code: 'MALFORMED_REQUEST', message: `the request could not be read: ${reason}` } });
  };
}

let installed = false;

export function answerFrameworkErrors(log: Logger): void {
  if (installed) return;
  installed = true;
  const frameworkMain = createRequire(import.meta.url).resolve('@google-cloud/functions-framework');
  const serverModule = createRequire(frameworkMain)(join(dirname(frameworkMain), 'server.js')) as {
    getServer: GetServer;
  };
  const getServer = serverModule.getServer;
  serverModule.getServer = (userFunction, options) => {
    const server = getServer(userFunction, options);
    const [app] = server.listeners('request') as App[];
    if (!app) return server;
    const final = finalHandler(options.signatureType, log);
    server.removeAllListeners('request');
    server.on('request', (req: IncomingMessage, res: ServerResponse) =>
      app(req, res, (error) => final(req, res, error)),
    );
    return server;
  };
}
