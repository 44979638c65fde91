/**
 * The CLI's commands against a deployment (the cloud, or the local stack): submit an input, watch a
 * request, download its results, view them. Each writes through `Output`, so a terminal gets a progress
 * bar, a log gets plain lines and `--json` gets one JSON object per line.
 */
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { contentTypeOf } from '../../lib/content-types.js';
import { RESULT_FILES, type ResultName } from '../../lib/results.js';
import {
  callJson,
  CliError,
  parseGsUri,
  readStatus,
  storageClient,
  type Connection,
  type StatusAnswer,
} from './client.js';
import { changeLine, elapsed, FINISHED, outcomeLine, progressBar, type WatchedStatus } from './progress.js';
import { jsonLine, printable, printableLines } from './printable.js';
import { serveViewer } from '../viewer-server.js';

export interface Output {
  json: boolean;
  /** A terminal: progress redrawn in place. */
  tty: boolean;
  columns: number;
  write(text: string): void;
}

// Lines and records carry an answer's text: its control characters are escaped (printable.ts).
const line = (out: Output, text: string) => out.write(`${printableLines(text)}\n`);
const record = (out: Output, value: unknown) => out.write(`${jsonLine(value)}\n`);

/**
 * Puts a local file into Cloud Storage under `prefix` (`gs://BUCKET/PATH/`) with the caller's storage
 * credentials and answers its URI. A signed upload URL from the service would replace this one call.
 */
export async function uploadFile(
  connection: Connection,
  path: string,
  prefix: string,
  metadata: Record<string, string> = {},
): Promise<string> {
  const info = await stat(path).catch(() => undefined);
  if (!info?.isFile()) throw new CliError(`no file at ${path}`, 2);
  if (!prefix.endsWith('/')) throw new CliError(`--upload-to must end with /: ${prefix}`, 2);
  const { bucket, name: folder } = parseGsUri(`${prefix}x`);
  const name = `${folder.slice(0, -1)}${basename(path)}`;
  await storageClient(connection)
    .bucket(bucket)
    .upload(path, {
      destination: name,
      // Resumable survives a dropped connection on a large video; the local stack's API takes one request.
      resumable: connection.storageApi === undefined,
      contentType: contentTypeOf(path),
      metadata: { metadata },
    });
  return `gs://${bucket}/${name}`;
}

export interface SubmitOptions {
  input: string;
  /** The trigger function's URL; none: the upload alone starts the request (its status object follows it). */
  trigger?: string;
  uploadTo?: string;
  session: string;
  params?: Record<string, unknown>;
  webhook?: string;
  idempotencyKey?: string;
  /** Where upload status objects are (the functions' UPLOAD_STATUS_PREFIX). */
  statusPrefix: string;
}

export interface Submitted {
  request_id?: string;
  input_uri: string;
  /** What `watch` and `download` take: the status URL, or the upload's status object. */
  status: string;
  duplicate?: boolean;
}

export async function submit(connection: Connection, options: SubmitOptions, out: Output): Promise<Submitted> {
  let uri = options.input;
  if (!uri.startsWith('gs://')) {
    if (!options.uploadTo) throw new CliError('a local file needs --upload-to gs://BUCKET/FOLDER/', 2);
    // Started by the upload itself, a webhook travels as the object's metadata.
    const metadata: Record<string, string> =
      !options.trigger && options.webhook ? { 'webhook-url': options.webhook } : {};
    uri = await uploadFile(connection, resolve(options.input), options.uploadTo, metadata);
    if (!out.json) line(out, `uploaded ${uri}`);
  }
  if (!options.trigger) {
    const { bucket, name } = parseGsUri(uri);
    const submitted = { input_uri: uri, status: `gs://${bucket}/${options.statusPrefix}${name}.json` };
    if (out.json) record(out, submitted);
    else line(out, `status object ${submitted.status}`);
    return submitted;
  }
  const answer = await callJson<{ request_id: string; status_url: string; duplicate: boolean }>(
    connection,
    options.trigger,
    {
      method: 'POST',
      body: {
        session_id: options.session,
        input: { uri },
        ...(options.params ? { params: options.params } : {}),
        ...(options.webhook ? { webhook_url: options.webhook } : {}),
      },
      headers: options.idempotencyKey ? { 'idempotency-key': options.idempotencyKey } : {},
    },
  );
  const submitted = {
    request_id: answer.request_id,
    input_uri: uri,
    status: answer.status_url,
    duplicate: answer.duplicate,
  };
  if (out.json) record(out, submitted);
  else
    line(
      out,
      `request ${printable(answer.request_id)}${answer.duplicate ? ' (already submitted)' : ''} queued\nstatus ${printable(answer.status_url)}`,
    );
  return submitted;
}

/** Polls `where` until the request ends; answers the last status. Tolerates a few failed polls in a row. */
export async function watch(
  connection: Connection,
  where: string,
  options: { intervalMs: number; now?: () => number },
  out: Output,
): Promise<StatusAnswer> {
  const now = options.now ?? Date.now;
  const started = now();
  let previous: WatchedStatus | undefined;
  let failures = 0;
  for (;;) {
    let status: StatusAnswer;
    try {
      status = await readStatus(connection, where);
      failures = 0;
    } catch (error) {
      if (error instanceof CliError && /^4\d\d /.test(error.message)) throw error;
      if (++failures >= 5) throw error;
      await sleep(options.intervalMs);
      continue;
    }
    const clock = elapsed(started, now());
    const done = FINISHED.has(status.status);
    if (out.json) {
      if (changeLine(status, previous, clock)) record(out, status);
    } else if (out.tty) {
      out.write(`\r\u001b[2K${progressBar(status, clock, out.columns)}${done ? '\n' : ''}`);
    } else {
      const text = changeLine(status, previous, clock);
      if (text) line(out, text);
    }
    previous = status;
    if (done) {
      if (!out.json) line(out, outcomeLine(status));
      return status;
    }
    await sleep(options.intervalMs);
  }
}

/** Streams one signed URL to `path` (a temporary name first: no half-written file is left). */
async function fetchTo(url: string, path: string): Promise<number> {
  const response = await fetch(url, { signal: AbortSignal.timeout(30 * 60_000) });
  if (!response.ok || !response.body) {
    await response.body?.cancel();
    throw new CliError(`${response.status} downloading ${basename(path)}`);
  }
  await mkdir(dirname(path), { recursive: true });
  const partial = `${path}.${randomUUID()}.partial`;
  try {
    await pipeline(Readable.fromWeb(response.body as never), createWriteStream(partial));
    await rename(partial, path);
  } catch (error) {
    await rm(partial, { force: true });
    throw error;
  }
  return (await stat(path)).size;
}

/**
 * The result files a status answer links, by their names in RESULT_FILES (its own keys only: an answer
 * naming `constructor` or `__proto__` names no result file); a listed file without an http(s) URL is
 * refused rather than half-downloaded.
 */
function resultLinks(files: unknown): Array<[ResultName, string]> {
  if (files !== undefined && (files === null || typeof files !== 'object' || Array.isArray(files))) {
    throw new CliError('the status answer\'s "files" is not an object of result files');
  }
  const links: Array<[ResultName, string]> = [];
  for (const [name, file] of Object.entries(files ?? {})) {
    if (!Object.hasOwn(RESULT_FILES, name)) continue; // a newer service's file this CLI does not know
    const url = (file as { url?: unknown } | null)?.url;
    if (typeof url !== 'string' || !/^https?:\/\//.test(url)) {
      throw new CliError(`the status answer's "${name}" has no http(s) URL to download it from`);
    }
    links.push([name as ResultName, url]);
  }
  if (links.length === 0) throw new CliError('the status answer lists no result files');
  return links;
}

/**
 * Downloads a completed request's result files into `folder`, laid out as in the request's folder
 * (export/report.json, …), through the signed URLs its status answer carries.
 */
export async function download(
  connection: Connection,
  where: string,
  folder: string,
  out: Output,
): Promise<Array<{ name: string; path: string; bytes: number }>> {
  let status = await readStatus(connection, where);
  // An upload's status object names the status URL that signs its results.
  if (where.startsWith('gs://') && status.status_url) status = await readStatus(connection, status.status_url);
  if (status.status !== 'COMPLETED') throw new CliError(`the request is ${status.status}: nothing to download`);
  const files = resultLinks(status.files);
  const written: Array<{ name: string; path: string; bytes: number }> = [];
  for (const [name, url] of files) {
    const path = join(folder, RESULT_FILES[name].path);
    const bytes = await fetchTo(url, path);
    written.push({ name, path, bytes });
    if (out.json) record(out, { name, path, bytes });
    else line(out, `${name.padEnd(10)} ${path} (${bytes} bytes)`);
  }
  return written;
}

/** Serves the viewer on a folder of results until Ctrl-C. */
export async function view(folder: string, options: { port?: number }, out: Output): Promise<void> {
  const served = await serveViewer(resolve(folder), options);
  if (out.json) record(out, { url: served.url });
  else line(out, `viewer ${served.url} (Ctrl-C stops it)`);
  await new Promise<void>((done) => process.once('SIGINT', () => void served.close().then(done)));
}
