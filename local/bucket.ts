/**
 * The local stand-in for Cloud Storage: `gs://BUCKET/path` is `ROOT/BUCKET/path`. A write under the
 * uploads prefix emits the `google.cloud.storage.object.v1.finalized` CloudEvent that Eventarc would
 * deliver to `onUpload` (binary content mode, StorageObjectData body). What GCS keeps beside an object
 * written through here (generation, content type, custom metadata) is kept in `ROOT/.objects/BUCKET/NAME.json`
 * (".objects" is no valid bucket name); files the stages write directly have a generation from their mtime.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CRC32C } from '@google-cloud/storage';
import type { Logger } from '../lib/log.js';
import { fault, WorkflowError } from './workflows/errors.js';
import type { CallTarget } from './workflows/interpreter.js';

const GS_URI = /^gs:\/\/([a-z0-9][a-z0-9._-]{1,220}[a-z0-9])\/(.*)$/;

export class TooLargeError extends Error {
  override name = 'TooLargeError';
}

export interface BucketOptions {
  root: string;
  /** Objects whose name starts with this emit a finalize event (e.g. `uploads/`). */
  uploadsPrefix?: string;
  /** Where finalize events go (the `onUpload` function's URL); none: no events. */
  eventUrl?: string;
  log: Logger;
}

export interface StoredObject {
  bucket: string;
  name: string;
  generation: string;
  size: string;
  md5Hash: string;
  /** base64, as GCS answers it (the client checks it and deletes an upload it believes corrupt). */
  crc32c: string;
  contentType: string;
  timeCreated: string;
  metadata?: Record<string, string>;
}

export interface WriteOptions {
  contentType?: string;
  maxBytes?: number;
  metadata?: Record<string, string>;
  /** GCS's precondition: the object's current generation, 0 for "must not exist". */
  ifGenerationMatch?: string;
}

/** A write whose `ifGenerationMatch` did not hold (GCS answers 412). */
export class PreconditionFailedError extends Error {
  override name = 'PreconditionFailedError';
}

export class LocalBucket {
  /** The last read or write queued per object (see `exclusive`). */
  private readonly queued = new Map<string, Promise<unknown>>();

  constructor(private readonly options: BucketOptions) {}

  private sidecarOf(bucket: string, object: string): string {
    this.pathOf(bucket, object);
    return join(this.options.root, '.objects', bucket, `${object}.json`);
  }

  /** The object's GCS resource, or undefined when there is none. */
  async describe(bucket: string, name: string): Promise<StoredObject | undefined> {
    const path = this.pathOf(bucket, name);
    const info = await stat(path, { bigint: true }).catch(() => undefined);
    if (!info?.isFile()) return undefined;
    const kept = await readFile(this.sidecarOf(bucket, name), 'utf8').then(
      (text) => JSON.parse(text) as StoredObject,
      () => undefined,
    );
    if (kept && kept.size === String(info.size)) return kept;
    const body = await readFile(path);
    const crc = new CRC32C();
    crc.update(body);
    return {
      bucket,
      name,
      generation: String(info.mtimeNs / 1000n),
      size: String(info.size),
      md5Hash: createHash('md5').update(body).digest('base64'),
      crc32c: crc.toString(),
      contentType: 'application/octet-stream',
      timeCreated: new Date(Number(info.mtimeMs)).toISOString(),
    };
  }

  /** The local file of `gs://BUCKET/object`; refuses names that would escape the root. */
  pathOf(bucket: string, object: string): string {
    const path = join(this.options.root, bucket, object);
    const inside = relative(this.options.root, path);
    if (inside.startsWith('..') || inside.split(sep)[0] !== bucket)
      throw new Error(`object ${object} escapes the bucket`);
    return path;
  }

  /** A `gs://` URI as a local path (a trailing `/` kept); anything else unchanged. */
  localize(value: string): string {
    const match = GS_URI.exec(value);
    if (!match) return value;
    const path = this.pathOf(match[1]!, match[2]!);
    // join keeps a trailing separator already; a folder URI must still end in one.
    return value.endsWith('/') && !path.endsWith(sep) ? path + sep : path;
  }

  /** Runs `work` after every earlier read or write of the same object (a precondition and its write, or a
   * resource and the body it describes, are one step). */
  private exclusive<T>(key: string, work: () => Promise<T>): Promise<T> {
    const before = this.queued.get(key) ?? Promise.resolve();
    const run = before.catch(() => undefined).then(work);
    this.queued.set(key, run);
    return run.finally(() => {
      if (this.queued.get(key) === run) this.queued.delete(key);
    });
  }

  /**
   * An object's resource and its body as of the same moment, from a descriptor opened then (a later
   * write's rename does not change what it reads). Undefined: no such object.
   */
  read(bucket: string, name: string): Promise<{ object: StoredObject; body: Readable } | undefined> {
    return this.exclusive(`${bucket}/${name}`, async () => {
      const handle = await open(this.pathOf(bucket, name)).catch(() => undefined);
      if (!handle) return undefined;
      const object = await this.describe(bucket, name).catch(async (error: unknown) => {
        await handle.close();
        throw error;
      });
      if (!object) {
        await handle.close();
        return undefined;
      }
      return { object, body: handle.createReadStream() };
    });
  }

  /**
   * Streams an object in whole (temp file + rename, so no reader sees half of it), then emits its event.
   * Refuses, and leaves nothing behind, past `maxBytes` or when `ifGenerationMatch` does not hold.
   */
  async write(
    bucket: string,
    name: string,
    data: Readable | Buffer,
    options: WriteOptions | string = {},
  ): Promise<StoredObject> {
    const settings = typeof options === 'string' ? { contentType: options } : options;
    return this.exclusive(`${bucket}/${name}`, () => this.writeNow(bucket, name, data, settings));
  }

  private async writeNow(bucket: string, name: string, data: Readable | Buffer, options: WriteOptions) {
    const path = this.pathOf(bucket, name);
    const maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
    await mkdir(dirname(path), { recursive: true });
    const temporary = `${path}.${randomUUID()}.partial`;
    const md5 = createHash('md5');
    const crc = new CRC32C();
    let size = 0;
    const measure = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        size += chunk.length;
        if (size > maxBytes) return done(new TooLargeError(`object over ${maxBytes} bytes`));
        md5.update(chunk);
        crc.update(chunk);
        done(null, chunk);
      },
    });
    try {
      await pipeline(Buffer.isBuffer(data) ? Readable.from([data]) : data, measure, createWriteStream(temporary));
      if (options.ifGenerationMatch !== undefined) {
        const current = (await this.describe(bucket, name))?.generation ?? '0';
        if (current !== options.ifGenerationMatch) {
          throw new PreconditionFailedError(
            `At least one of the pre-conditions you specified did not hold (generation ${current})`,
          );
        }
      }
      await rename(temporary, path);
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
    const now = new Date();
    const object: StoredObject = {
      bucket,
      name,
      // Microseconds, as GCS's are; rising even for writes in the same millisecond.
      generation: String(Math.max(now.getTime() * 1000, this.lastGeneration + 1)),
      size: String(size),
      md5Hash: md5.digest('base64'),
      crc32c: crc.toString(),
      contentType: options.contentType ?? 'application/octet-stream',
      timeCreated: now.toISOString(),
      ...(options.metadata ? { metadata: options.metadata } : {}),
    };
    this.lastGeneration = Number(object.generation);
    const sidecar = this.sidecarOf(bucket, name);
    await mkdir(dirname(sidecar), { recursive: true });
    await writeFile(sidecar, JSON.stringify(object));
    if (this.options.eventUrl && name.startsWith(this.options.uploadsPrefix ?? '')) await this.finalized(object);
    return object;
  }

  private lastGeneration = 0;

  private async finalized(object: StoredObject): Promise<void> {
    const data = {
      kind: 'storage#object',
      id: `${object.bucket}/${object.name}/${object.generation}`,
      selfLink: `https://www.googleapis.com/storage/v1/b/${object.bucket}/o/${encodeURIComponent(object.name)}`,
      mediaLink: `https://storage.googleapis.com/download/storage/v1/b/${object.bucket}/o/${encodeURIComponent(object.name)}?generation=${object.generation}&alt=media`,
      metageneration: '1',
      storageClass: 'STANDARD',
      updated: object.timeCreated,
      ...object,
    };
    const response = await fetch(this.options.eventUrl!, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'ce-specversion': '1.0',
        'ce-id': randomUUID(),
        'ce-type': 'google.cloud.storage.object.v1.finalized',
        'ce-source': `//storage.googleapis.com/projects/_/buckets/${object.bucket}`,
        'ce-subject': `objects/${object.name}`,
        'ce-time': object.timeCreated,
      },
      body: JSON.stringify(data),
    });
    this.options.log.info('finalize event delivered', { object: data.id, status: response.status });
  }

  /**
   * `googleapis.storage.v1.objects.get` as the workflow uses it: metadata (finding manifests), or with
   * `alt: media` the body of a JSON object, which the connector answers parsed (reading error.json).
   */
  storageCalls(): Record<string, CallTarget> {
    return {
      'googleapis.storage.v1.objects.get': async (args) => {
        const bucket = String(args.bucket);
        const name = decodeURIComponent(String(args.object));
        const alt = args.alt ?? 'json';
        if (alt !== 'json' && alt !== 'media')
          throw new Error(`objects.get alt=${JSON.stringify(alt)} is not supported locally`);
        // Only JSON bodies: Workflows answers other media as bytes, a type the local interpreter does not have.
        if (alt === 'media' && !name.endsWith('.json'))
          throw new Error(`objects.get alt=media of ${name}: only JSON objects are supported locally`);
        const path = this.pathOf(bucket, name);
        try {
          const info = await stat(path);
          if (!info.isFile()) throw Object.assign(new Error('not a file'), { code: 'ENOENT' });
          if (alt === 'media') {
            const body = await readFile(path, 'utf8');
            try {
              return JSON.parse(body) as unknown;
            } catch {
              throw fault('ValueError', `the body of ${bucket}/${name} is not valid JSON`);
            }
          }
          return { kind: 'storage#object', bucket, name, size: String(info.size), updated: info.mtime.toISOString() };
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
          const message = `No such object: ${bucket}/${name}`;
          throw new WorkflowError({
            message: 'HTTP server responded with error code 404',
            code: 404,
            tags: ['HttpError'],
            headers: {},
            body: { error: { code: 404, message, errors: [{ message, reason: 'notFound' }] } },
          });
        }
      },
    };
  }
}
