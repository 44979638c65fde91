/**
 * `http.get/post/put` with Workflows' result and error shapes: `{code, headers, body}` on 2xx;
 * otherwise an error map tagged HttpError (with code, headers, body), ConnectionError or TimeoutError,
 * which `http.default_retry_predicate` understands.
 */
import { WorkflowError, type Value } from './errors.js';
import type { CallTarget } from './interpreter.js';

interface HttpArgs {
  url?: unknown;
  headers?: Record<string, string>;
  query?: Record<string, unknown>;
  body?: unknown;
  /** Seconds; Workflows' default is 300. */
  timeout?: number;
  /** OIDC/OAuth2 in the cloud; locally there is no identity to present, so it is accepted and not sent. */
  auth?: unknown;
}

async function request(method: string, args: HttpArgs): Promise<Value> {
  if (typeof args.url !== 'string') throw new WorkflowError({ message: 'http: url is required', tags: ['TypeError'] });
  const url = new URL(args.url);
  for (const [name, value] of Object.entries(args.query ?? {})) url.searchParams.set(name, String(value));
  const headers: Record<string, string> = { ...args.headers };
  let body: string | undefined;
  if (args.body !== undefined && args.body !== null) {
    body = typeof args.body === 'string' ? args.body : JSON.stringify(args.body);
    if (typeof args.body !== 'string') headers['content-type'] ??= 'application/json';
  }
  let response: Response;
  try {
    response = await fetch(url, { method, headers, body, signal: AbortSignal.timeout((args.timeout ?? 300) * 1000) });
  } catch (error) {
    const timedOut = error instanceof Error && error.name === 'TimeoutError';
    throw new WorkflowError({
      message: `${method} ${url.origin}${url.pathname}: ${timedOut ? 'timed out' : (((error as Error).cause as Error | undefined)?.message ?? (error as Error).message)}`,
      tags: [timedOut ? 'TimeoutError' : 'ConnectionError'],
    });
  }
  const text = await response.text();
  let parsed: Value = text;
  if ((response.headers.get('content-type') ?? '').includes('json') && text) {
    try {
      parsed = JSON.parse(text) as Value;
    } catch {
      parsed = text;
    }
  }
  const result = { code: response.status, headers: Object.fromEntries(response.headers), body: parsed };
  if (response.ok) return result;
  throw new WorkflowError({
    message: `HTTP server responded with error code ${response.status}`,
    tags: ['HttpError'],
    ...result,
  });
}

export const httpCalls: Record<string, CallTarget> = {
  'http.get': (args) => request('GET', args),
  'http.post': (args) => request('POST', args),
  'http.put': (args) => request('PUT', args),
};
