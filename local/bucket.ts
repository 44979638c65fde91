/**
 * The local stand-in for Cloud Storage: `gs://BUCKET/path` is `ROOT/BUCKET/path`. A write under the
 * uploads prefix emits the `google.cloud.storage.object.v1.finalized` CloudEvent that Eventarc would
 * deliver to `onUpload` (binary content mode, StorageObjectData body).
 */
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
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
  contentType: string;
  timeCreated: string;
}

export class LocalBucket {
  constructor(private readonly options: BucketOptions) {}

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

  /**
   * Streams an object in whole (temp file + rename, so no reader sees half of it), then emits its event.
   * Refuses, and leaves nothing behind, past `maxBytes`.
   */
  async write(
    bucket: string,
    name: string,
    data: Readable | Buffer,
    contentType = 'application/octet-stream',
    maxBytes = Number.POSITIVE_INFINITY,
  ): Promise<StoredObject> {
    const path = this.pathOf(bucket, name);
    await mkdir(dirname(path), { recursive: true });
    const temporary = `${path}.${randomUUID()}.partial`;
    const md5 = createHash('md5');
    let size = 0;
    const measure = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        size += chunk.length;
        if (size > maxBytes) return done(new TooLargeError(`object over ${maxBytes} bytes`));
        md5.update(chunk);
        done(null, chunk);
      },
    });
    try {
      await pipeline(Buffer.isBuffer(data) ? Readable.from([data]) : data, measure, createWriteStream(temporary));
      await rename(temporary, path);
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
    const now = new Date();
    const object: StoredObject = {
      bucket,
      name,
      generation: String(now.getTime() * 1000),
      size: String(size),
      md5Hash: md5.digest('base64'),
      contentType,
      timeCreated: now.toISOString(),
    };
    if (this.options.eventUrl && name.startsWith(this.options.uploadsPrefix ?? '')) await this.finalized(object);
    return object;
  }

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
