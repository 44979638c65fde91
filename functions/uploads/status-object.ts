/**
 * The status object beside each upload, `gs://<bucket>/<prefix><upload name>.json`: what an uploader
 * (who holds no callback token from a trigger call) reads to follow the request the upload started.
 * RequestStore calls `written` after every committed write of a record, so every state change — admission,
 * dispatch and its failures, the workflow's PUT /status reports, lease expiry, reconcile — reaches it
 * from one place. The record stays the truth: a failed write here is logged, never fails the change.
 *
 * Writers race (several function instances, Eventarc redelivery, a re-upload of the same name), so a
 * write is conditional (`ifGenerationMatch` on the generation it read, 0 for "must not exist": the
 * documented way to avoid races, https://cloud.google.com/storage/docs/request-preconditions) and
 * never replaces a newer state: a later upload generation, a later record update, or a terminal state.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Storage } from '@google-cloud/storage';
import type { Logger } from '../../lib/log.js';
import { completedResults, viewerOf } from '../../lib/results.js';
import type { StageError, Status } from '../queue/schemas.js';
import { TERMINAL, type RequestRecord, type UploadRef } from '../records/request-record.js';

export type UploadState = Status | 'REJECTED';

export interface UploadStatus {
  upload: UploadRef;
  request_id: string;
  status: UploadState;
  stage?: string;
  progress?: number;
  error?: StageError;
  attempts?: number;
  created_at?: string;
  updated_at: string;
  finished_at?: string;
  /** GET /status with this request's callback token: signed URLs of the results once done. */
  status_url?: string;
  /** Where the results are (gs:// URIs), once COMPLETED. */
  results?: { folder: string; viewer: string; files: Record<string, string> };
}

/** What the object's custom metadata keeps so a writer can order itself without reading the body. */
const KEYS = {
  generation: 'splatflow-upload-generation',
  updatedAt: 'splatflow-updated-at',
  status: 'splatflow-status',
  token: 'splatflow-callback-token',
} as const;

interface Current {
  generation: string;
  metadata: Record<string, string>;
}

export interface StatusObjectSettings {
  /** Status objects are `<prefix><upload name>.json` in the upload's bucket. */
  prefix: string;
  /** The status function's URL (`…/status`). */
  statusUrl: string;
  /** `{outputPrefix}{request_id}/` is a request's folder. */
  outputPrefix: string;
}

export const statusObjectName = (prefix: string, uploadName: string): string => `${prefix}${uploadName}.json`;

const ATTEMPTS = 10;

const FINAL: ReadonlySet<UploadState> = new Set([...TERMINAL, 'REJECTED']);

/** True when `next` may replace what the object holds now (pure). */
export function supersedes(
  next: { generation: string; updated_at: string; status: UploadState },
  current: Record<string, string>,
): boolean {
  const held = current[KEYS.generation];
  if (held === undefined || !/^\d+$/.test(held)) return true;
  if (BigInt(next.generation) !== BigInt(held)) return BigInt(next.generation) > BigInt(held);
  const heldStatus = current[KEYS.status] as UploadState | undefined;
  if (heldStatus && FINAL.has(heldStatus) && !FINAL.has(next.status)) return false;
  return next.updated_at >= (current[KEYS.updatedAt] ?? '');
}

/** The status object of a request started by an upload (pure). */
export function uploadStatus(
  record: RequestRecord & { upload: UploadRef },
  settings: Pick<StatusObjectSettings, 'outputPrefix'>,
): UploadStatus {
  const folder = `${settings.outputPrefix}${record.request_id}/`;
  return {
    upload: record.upload,
    request_id: record.request_id,
    status: record.status,
    ...(record.stage === undefined ? {} : { stage: record.stage }),
    ...(record.progress === undefined ? {} : { progress: record.progress }),
    ...(record.error === undefined ? {} : { error: record.error }),
    attempts: record.attempts,
    created_at: record.created_at,
    updated_at: record.updated_at,
    ...(record.finished_at === undefined ? {} : { finished_at: record.finished_at }),
    ...(record.status === 'COMPLETED'
      ? { results: { folder, viewer: viewerOf(folder), files: completedResults(record.outputs) } }
      : {}),
  };
}

export class StatusObjects {
  constructor(
    private readonly storage: Storage,
    private readonly settings: StatusObjectSettings,
    private readonly log: Logger,
  ) {}

  /** True for the status objects' own names (their finalize events start nothing). */
  covers(name: string): boolean {
    return name.startsWith(this.settings.prefix);
  }

  private file(upload: UploadRef) {
    return this.storage.bucket(upload.bucket).file(statusObjectName(this.settings.prefix, upload.name));
  }

  private async current(upload: UploadRef): Promise<Current | undefined> {
    try {
      const [metadata] = await this.file(upload).getMetadata();
      return {
        generation: String(metadata.generation),
        metadata: Object.fromEntries(
          Object.entries(metadata.metadata ?? {}).map(([key, value]) => [key, String(value)]),
        ),
      };
    } catch (error) {
      if ((error as { code?: number }).code === 404) return undefined;
      throw error;
    }
  }

  /**
   * Writes `status` unless the object holds a newer state; keeps the callback token it holds for the
   * same upload generation (or sets `token`). Answers the token the object holds afterwards.
   */
  private async put(status: UploadStatus, token?: string): Promise<string | undefined> {
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      // Writers that lost a race back off apart (random, growing), so they do not collide again.
      if (attempt > 0) await sleep(Math.random() * Math.min(1000, 25 * 2 ** attempt));
      const current = await this.current(status.upload);
      const held =
        current?.metadata[KEYS.generation] === status.upload.generation ? current.metadata[KEYS.token] : undefined;
      if (current && !supersedes({ ...status, generation: status.upload.generation }, current.metadata)) return held;
      const kept = held ?? token;
      const body = kept ? { ...status, status_url: `${this.settings.statusUrl}?callback_token=${kept}` } : status;
      try {
        await this.file(status.upload).save(JSON.stringify(body, null, 2) + '\n', {
          resumable: false,
          contentType: 'application/json',
          metadata: {
            // A status is read to follow a request: never a cached copy.
            cacheControl: 'no-store',
            metadata: {
              [KEYS.generation]: status.upload.generation,
              [KEYS.updatedAt]: status.updated_at,
              [KEYS.status]: status.status,
              ...(kept ? { [KEYS.token]: kept } : {}),
            },
          },
          preconditionOpts: { ifGenerationMatch: current ? current.generation : 0 },
        });
        return kept;
      } catch (error) {
        // 412: another writer went first; read again and decide again.
        if ((error as { code?: number }).code !== 412) throw error;
      }
    }
    throw new Error(`status object of ${status.upload.name} kept changing under ${ATTEMPTS} conditional writes`);
  }

  /**
   * The callback token of the request an upload starts, created with the first status object: a
   * redelivered event finds the token the first delivery wrote, so both answer the same request.
   */
  async reserveToken(upload: UploadRef, requestId: string, newToken: () => string): Promise<string> {
    const current = await this.current(upload);
    const held = current?.metadata[KEYS.generation];
    // This generation has its object already (a redelivery), or a newer upload replaced it: write nothing.
    if (held !== undefined && /^\d+$/.test(held) && BigInt(held) >= BigInt(upload.generation)) {
      return (held === upload.generation ? current?.metadata[KEYS.token] : undefined) ?? newToken();
    }
    const token = newToken();
    const status: UploadStatus = {
      upload,
      request_id: requestId,
      status: 'QUEUED',
      updated_at: new Date().toISOString(),
    };
    return (await this.put(status, token)) ?? token;
  }

  /** A record was written (RequestStore's listener): its upload's status object follows. Never throws. */
  async written(record: RequestRecord): Promise<void> {
    const { upload } = record;
    if (!upload) return;
    try {
      await this.put(uploadStatus({ ...record, upload }, this.settings));
    } catch (error) {
      this.log.error('status object not updated', { request_id: record.request_id, upload: upload.name, error });
    }
  }

  /** An upload that starts nothing: the status object says why. Never throws. */
  async rejected(upload: UploadRef, requestId: string, reason: string): Promise<void> {
    const now = new Date().toISOString();
    const status: UploadStatus = {
      upload,
      request_id: requestId,
      status: 'REJECTED',
      error: { code: 'UPLOAD_REJECTED', message: reason },
      updated_at: now,
      finished_at: now,
    };
    try {
      await this.put(status);
    } catch (error) {
      this.log.error('status object of a rejected upload not written', { upload: upload.name, error });
    }
  }
}
