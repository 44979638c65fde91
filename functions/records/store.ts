/**
 * RequestStore: the request records in Firestore, the source of truth. Only single-document
 * reads, creates, transactions, equality queries and one paged query (status, then request_id:
 * the composite index terraform/firestore.tf declares) are used, what the emulator and every
 * Firestore edition serve alike.
 */
import { Firestore, type DocumentSnapshot } from '@google-cloud/firestore';
import type { Change, RequestRecord } from './request-record.js';

/** gRPC ALREADY_EXISTS, answered by `create()` for a document that exists. */
const ALREADY_EXISTS = 6;

export interface RejectedUpload {
  bucket: string;
  name: string;
  generation: string;
  reason: string;
  received_at: string;
}

export type StoreChange = Change | { kind: 'not_found' };

/** Told of every record write once it is committed (the upload status objects follow records this way). */
export interface RecordListener {
  /** Awaited before the write's caller goes on (a function may lose its CPU once it answers); must not throw. */
  written(record: RequestRecord): Promise<void>;
}

/**
 * A field a change removes is written as null and read back as absent. Deleting it would be
 * cleaner, but the emulator tests run on never removes a field (not by set, nor by update with
 * FieldValue.delete()), and null means the same on both.
 */
function replacement(current: RequestRecord, next: RequestRecord): Record<string, unknown> {
  const fields: Record<string, unknown> = { ...next };
  for (const key of Object.keys(current)) fields[key] ??= null;
  return fields;
}

function recordOf(snapshot: DocumentSnapshot): RequestRecord {
  const data = snapshot.data() ?? {};
  return Object.fromEntries(Object.entries(data).filter(([, value]) => value !== null)) as unknown as RequestRecord;
}

export class RequestStore {
  private readonly requests;
  private readonly rejected;
  private readonly cursors;

  constructor(
    private readonly db: Firestore,
    private readonly listener?: RecordListener,
  ) {
    this.requests = db.collection('requests');
    this.rejected = db.collection('rejected_uploads');
    this.cursors = db.collection('scan_cursors');
  }

  /** False when a record with that id exists already (the caller's duplicate). */
  async create(record: RequestRecord): Promise<boolean> {
    try {
      await this.requests.doc(record.request_id).create(record);
      await this.listener?.written(record);
      return true;
    } catch (error) {
      if ((error as { code?: number }).code === ALREADY_EXISTS) return false;
      throw error;
    }
  }

  async get(requestId: string): Promise<RequestRecord | undefined> {
    const snapshot = await this.requests.doc(requestId).get();
    return snapshot.exists ? recordOf(snapshot) : undefined;
  }

  async findByTokenHash(tokenHash: string): Promise<RequestRecord | undefined> {
    const found = await this.requests.where('token_hash', '==', tokenHash).limit(1).get();
    const doc = found.docs[0];
    return doc ? recordOf(doc) : undefined;
  }

  /** Up to `limit` records with the status, in request-id order, after the id `after` when given. */
  async withStatus(status: RequestRecord['status'], limit: number, after?: string): Promise<RequestRecord[]> {
    // A range filter rather than a query cursor: the emulator tests run on ignores cursors.
    let query = this.requests.where('status', '==', status);
    if (after !== undefined) query = query.where('request_id', '>', after);
    const found = await query.orderBy('request_id').limit(limit).get();
    return found.docs.map(recordOf);
  }

  /** Where a paged scan (the reconciler's, per status) stopped: the last id it read, or undefined at the start. */
  async cursor(name: string): Promise<string | undefined> {
    const snapshot = await this.cursors.doc(name).get();
    const after = snapshot.data()?.after as unknown;
    return typeof after === 'string' ? after : undefined;
  }

  async setCursor(name: string, after: string | undefined): Promise<void> {
    await this.cursors.doc(name).set({ after: after ?? null, updated_at: new Date().toISOString() });
  }

  /** Applies `change` to the current record in one transaction; a refused change writes nothing. */
  async change(requestId: string, change: (record: RequestRecord) => Change): Promise<StoreChange> {
    const ref = this.requests.doc(requestId);
    const outcome = await this.db.runTransaction(async (transaction): Promise<StoreChange> => {
      const snapshot = await transaction.get(ref);
      if (!snapshot.exists) return { kind: 'not_found' } as const;
      const current = recordOf(snapshot);
      const outcome = change(current);
      if (outcome.kind === 'ok') transaction.update(ref, replacement(current, outcome.record));
      return outcome;
    });
    if (outcome.kind === 'ok') await this.listener?.written(outcome.record);
    return outcome;
  }

  /** Records an upload that starts no work, once per object generation. */
  async reject(id: string, upload: RejectedUpload): Promise<void> {
    await this.rejected.doc(id).set(upload);
  }

  async rejection(id: string): Promise<RejectedUpload | undefined> {
    const snapshot = await this.rejected.doc(id).get();
    return snapshot.exists ? (snapshot.data() as RejectedUpload) : undefined;
  }
}

export function openFirestore(projectId: string): Firestore {
  // Optional fields are left out rather than written as nulls.
  return new Firestore({ projectId, ignoreUndefinedProperties: true });
}
