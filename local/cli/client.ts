/**
 * How the CLI reaches a deployment: who it says it is (the local stack's caller header, an ID token
 * from gcloud or from Application Default Credentials), JSON calls with Google-shaped errors, and Cloud
 * Storage (the real client; `--storage-api` points it at the local stack).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Storage } from '@google-cloud/storage';
import { GoogleAuth } from 'google-auth-library';
import type { WatchedStatus } from './progress.js';

export type AuthMode = 'local' | 'gcloud' | 'adc' | 'none';
export const AUTH_MODES: readonly AuthMode[] = ['local', 'gcloud', 'adc', 'none'];

export interface Connection {
  /** None: `local` for a loopback URL (the local stack), `adc` for any other. */
  auth?: AuthMode;
  /** `--auth local`: the caller the local stack's header names (AUTH_LOCAL_HEADER). */
  caller: string;
  localHeader: string;
  /** The ID token's audience; default: the function's URL (see `audienceOf`). */
  audience?: string;
  /** A Cloud Storage JSON API endpoint (the local stack's API); default: Google's. */
  storageApi?: string;
}

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/**
 * A Cloud Run function's ID token audience is its URL: for `https://REGION-PROJECT.cloudfunctions.net/NAME/…`
 * the function's own path; for a `*.run.app` URL the origin
 * (https://cloud.google.com/run/docs/authenticating/service-to-service).
 */
export function audienceOf(url: string): string {
  const u = new URL(url);
  if (u.hostname.endsWith('.cloudfunctions.net')) return `${u.origin}/${u.pathname.split('/')[1] ?? ''}`;
  return u.origin;
}

const run = promisify(execFile);

/** A URL of this machine (the local stack). */
export const isLoopback = (url: string): boolean => /^(127\.0\.0\.1|localhost|\[::1\])$/.test(new URL(url).hostname);

/** The headers that authenticate a call to `url`. */
export async function authHeaders(connection: Connection, url: string): Promise<Record<string, string>> {
  switch (connection.auth ?? (isLoopback(url) ? 'local' : 'adc')) {
    case 'none':
      return {};
    case 'local':
      return { [connection.localHeader]: connection.caller };
    case 'gcloud': {
      const { stdout } = await run('gcloud', ['auth', 'print-identity-token']).catch((error: Error) => {
        throw new CliError(`gcloud auth print-identity-token failed: ${error.message}`);
      });
      return { authorization: `Bearer ${stdout.trim()}` };
    }
    case 'adc': {
      const client = await new GoogleAuth().getIdTokenClient(connection.audience ?? audienceOf(url));
      return Object.fromEntries((await client.getRequestHeaders(url)).entries());
    }
  }
}

/** A JSON call; a non-2xx answer becomes a CliError with the function's `{error: {code, message}}`. */
export async function callJson<T>(
  connection: Connection,
  url: string,
  init: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<T> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: init.method ?? 'GET',
      headers: {
        ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(await authHeaders(connection, url)),
        ...init.headers,
      },
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
      signal: AbortSignal.timeout(60_000),
    });
  } catch (error) {
    throw new CliError(`cannot reach ${new URL(url).origin}: ${(error as Error).message}`);
  }
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new CliError(`${url} answered ${response.status} with no JSON: ${text.slice(0, 200)}`);
  }
  if (!response.ok) {
    const error = (body as { error?: { code?: string; message?: string } }).error;
    throw new CliError(`${response.status} ${error?.code ?? ''} ${error?.message ?? text.slice(0, 200)}`.trim());
  }
  return body as T;
}

export function storageClient(connection: Connection): Storage {
  return new Storage(connection.storageApi ? { apiEndpoint: connection.storageApi } : {});
}

const GS_URI = /^gs:\/\/([a-z0-9][a-z0-9._-]{1,220}[a-z0-9])\/(.+)$/;

export function parseGsUri(uri: string): { bucket: string; name: string } {
  const match = GS_URI.exec(uri);
  if (!match) throw new CliError(`not a gs://BUCKET/OBJECT URI: ${uri}`, 2);
  return { bucket: match[1]!, name: match[2]! };
}

/** Status answers carry this as well as the watched fields (GET /status and upload status objects). */
export interface StatusAnswer extends WatchedStatus {
  status_url?: string;
  files?: Record<string, { uri: string; url: string }>;
}

/**
 * A request's status from its status URL (`GET /status?callback_token=…`) or from an upload's status
 * object (`gs://BUCKET/status/…json`, read with the caller's storage credentials).
 */
export async function readStatus(connection: Connection, where: string): Promise<StatusAnswer> {
  if (!where.startsWith('gs://')) return statusAnswer(await callJson<unknown>(connection, where));
  const { bucket, name } = parseGsUri(where);
  let body: Buffer;
  try {
    [body] = await storageClient(connection).bucket(bucket).file(name).download();
  } catch (error) {
    // Written when the upload event is handled: a moment after the upload.
    if ((error as { code?: number }).code === 404) return { status: 'WAITING' };
    throw error;
  }
  try {
    return statusAnswer(JSON.parse(body.toString('utf8')));
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(`${where} is not JSON`);
  }
}

/** What the CLI reads of an answer is checked for its shape first: a bad answer is refused, saying so. */
function statusAnswer(body: unknown): StatusAnswer {
  const answer = body as StatusAnswer | null;
  if (!answer || typeof answer !== 'object' || typeof answer.status !== 'string') {
    throw new CliError('the answer is not a request status (no "status" text)');
  }
  const error = answer.error as unknown;
  if (
    error !== undefined &&
    (error === null || typeof error !== 'object' || typeof answer.error?.message !== 'string')
  ) {
    throw new CliError('the status answer\'s "error" has no "message" text');
  }
  return answer;
}
