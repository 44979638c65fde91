/**
 * Serializable transactions for the in-memory Firestore emulator. `@firestore-emulator/server` hands every
 * transaction the same dummy id and commits whatever it is sent, so two read-modify-write transactions on one
 * document both land, the second over the first: a request FAILED by one workflow branch could be put back to
 * PROCESSING by its sibling's report, which Firestore itself never allows (docs/records.md). Firestore's documented
 * contract is that a transaction whose reads were changed by another write before it commits fails with ABORTED, and
 * the client library runs it again on fresh reads. This layer gives the emulator that contract: each transaction gets
 * its own id, the version of every document it reads is noted, and a commit whose reads are stale is ABORTED.
 */

/** The gRPC status Firestore answers a transaction that lost a conflict with (the client retries it). */
const ABORTED = 10;

/** What this layer needs of grpc-js's server: its handler table (path → the implementation's function). */
interface HandlerTable {
  handlers: Map<string, { func: (...args: never[]) => unknown }>;
}

interface Call {
  request: Record<string, unknown>;
  write(message: Record<string, unknown>): boolean;
}
type Callback = (error: { code: number; details: string; message: string } | null, value?: unknown) => void;
type Handler = (call: Call, callback?: Callback) => unknown;

const SERVICE = '/google.firestore.v1.Firestore/';

/** Versions of documents and what each open transaction read of them (the pure part). */
export class TransactionLedger {
  private readonly versions = new Map<string, number>();
  private readonly reads = new Map<string, Map<string, number>>();

  /** A new transaction's id, unique for the emulator's life. */
  begin(): Uint8Array {
    const id = crypto.getRandomValues(new Uint8Array(12));
    this.reads.set(key(id), new Map());
    return id;
  }

  /** `transaction` read `path`; its first read fixes the version the commit is checked against. */
  read(transaction: Uint8Array, path: string): void {
    const seen = this.reads.get(key(transaction));
    if (seen && !seen.has(path)) seen.set(path, this.versions.get(path) ?? 0);
  }

  /** The first document `transaction` read that has been written since, if any; the transaction is closed. */
  settle(transaction: Uint8Array): string | undefined {
    const seen = this.reads.get(key(transaction));
    this.reads.delete(key(transaction));
    for (const [path, version] of seen ?? []) if ((this.versions.get(path) ?? 0) !== version) return path;
    return undefined;
  }

  /** A commit wrote `path` (inside a transaction or not). */
  written(path: string): void {
    this.versions.set(path, (this.versions.get(path) ?? 0) + 1);
  }
}

const key = (id: Uint8Array) => Buffer.from(id).toString('hex');
const present = (id: unknown): id is Uint8Array => id instanceof Uint8Array && id.length > 0;

/** Wraps the emulator's transaction methods in `server` (before it is bound) with a ledger's checks. */
export function isolateTransactions(server: unknown, ledger = new TransactionLedger()): void {
  const { handlers } = server as HandlerTable;
  const wrap = (method: string, make: (original: Handler) => Handler) => {
    const entry = handlers.get(SERVICE + method);
    if (!entry) throw new Error(`the Firestore emulator has no ${method} handler to wrap`);
    entry.func = make(entry.func as unknown as Handler);
  };

  // A read names its transaction, or asks for a new one whose id goes back in the stream's messages. A
  // BatchGetDocuments message names its document as `found` or `missing`, a RunQuery message as `document`.
  const reading =
    (original: Handler): Handler =>
    (call) => {
      const opened = call.request.has_new_transaction === true;
      const transaction = opened ? ledger.begin() : call.request.transaction;
      if (present(transaction)) {
        const write = call.write.bind(call);
        call.write = (message) => {
          if (opened && present(message.transaction)) message.transaction = transaction;
          const document = (message.found ?? message.document) as { name?: string } | undefined;
          const path = document?.name || (message.missing as string | undefined);
          if (path) ledger.read(transaction, path);
          return write(message);
        };
      }
      return original(call);
    };

  wrap('BatchGetDocuments', reading);
  wrap('RunQuery', reading);
  wrap(
    'BeginTransaction',
    (original) => (call, callback) =>
      original(call, (error, response) => {
        if (response) (response as Record<string, unknown>).transaction = ledger.begin();
        callback!(error, response);
      }),
  );
  wrap('Rollback', (original) => (call, callback) => {
    if (present(call.request.transaction)) ledger.settle(call.request.transaction);
    return original(call, callback);
  });
  wrap('Commit', (original) => (call, callback) => {
    const transaction = call.request.transaction;
    const stale = present(transaction) ? ledger.settle(transaction) : undefined;
    if (stale) {
      const details = `Aborted due to cross-transaction contention: ${stale} was written since this transaction read it`;
      callback!({ code: ABORTED, details, message: details });
      return;
    }
    const writes = (call.request.writes ?? []) as Array<{ update?: { name?: string }; delete?: string }>;
    for (const write of writes) {
      const path = write.update?.name || write.delete;
      if (path) ledger.written(path);
    }
    return original(call, callback);
  });
}
