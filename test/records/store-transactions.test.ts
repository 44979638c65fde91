/**
 * The record store's read-modify-write against the local Firestore emulator, through the official client: concurrent
 * changes of one record are serialized as Firestore serializes transactions (a stale one is ABORTED and run again),
 * so a terminal status is never overwritten by a report that raced it — what a workflow's two parallel branches do
 * when one fails while the other reports.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Firestore } from '@google-cloud/firestore';
import { startFirestore, type FirestoreEmulator } from '../../local/services/firestore-emulator.js';
import { openFirestore, RequestStore } from '../../functions/records/store.js';
import { applyUpdate, newRecord } from '../../functions/records/request-record.js';
import { TransactionLedger } from '../../local/services/firestore-transactions.js';

let emulator: FirestoreEmulator;
let db: Firestore;

before(async () => {
  emulator = await startFirestore();
  process.env.FIRESTORE_EMULATOR_HOST = emulator.host;
  db = openFirestore('store-transactions');
});
after(async () => {
  await db?.terminate();
  emulator?.stop();
});

describe('record store transactions', () => {
  it('counts every one of many concurrent increments of one document', async () => {
    const ref = db.collection('counters').doc('one');
    await ref.set({ n: 0 });
    // Each round of conflicts lets at least one through, so this many attempts always suffice.
    const increments = 8;
    await Promise.all(
      Array.from({ length: increments }, () =>
        db.runTransaction(
          async (transaction) => {
            const n = ((await transaction.get(ref)).data()?.n as number) ?? 0;
            transaction.update(ref, { n: n + 1 });
          },
          { maxAttempts: increments },
        ),
      ),
    );
    assert.equal((await ref.get()).data()?.n, increments);
  });

  it('never puts a FAILED request back to PROCESSING when a sibling report races the failure', async () => {
    const store = new RequestStore(db);
    for (let round = 0; round < 3; round++) {
      const record = {
        ...newRecord({ owner: 'o', origin: 'trigger', session_id: 's', input: { uri: 'gs://b/v.mp4' } }),
        status: 'PROCESSING' as const,
        stage: 'sfm',
      };
      assert.ok(await store.create(record));
      const now = () => new Date().toISOString();
      const reports = [
        { status: 'FAILED' as const, stage: 'sfm', error: { code: 'REFUSED', message: 'too dark' } },
        // Four writers at most, so the client's default five attempts always let each one through.
        ...Array.from({ length: 3 }, (_, i) => ({ status: 'PROCESSING' as const, stage: 'depth', progress: i / 10 })),
      ];
      const outcomes = await Promise.all(
        reports.map((body) => store.change(record.request_id, (current) => applyUpdate(current, body, now()))),
      );
      const final = await store.get(record.request_id);
      assert.equal(final?.status, 'FAILED', `round ${round}: ${JSON.stringify(outcomes.map((o) => o.kind))}`);
      assert.equal(final?.error?.message, 'too dark');
      assert.equal(outcomes[0]!.kind, 'ok');
      for (const outcome of outcomes.slice(1)) assert.ok(['ok', 'illegal_transition'].includes(outcome.kind));
    }
  });
});

describe('transaction ledger', () => {
  it('aborts a commit whose reads were written since, and only that one', () => {
    const ledger = new TransactionLedger();
    const [first, second, other] = [ledger.begin(), ledger.begin(), ledger.begin()];
    ledger.read(first, 'a');
    ledger.read(second, 'a');
    ledger.read(other, 'b');
    assert.equal(ledger.settle(first), undefined);
    ledger.written('a');
    assert.equal(ledger.settle(second), 'a');
    assert.equal(ledger.settle(other), undefined);
  });

  it('checks a document against the version the transaction first read', () => {
    const ledger = new TransactionLedger();
    const transaction = ledger.begin();
    ledger.read(transaction, 'a');
    ledger.written('a');
    ledger.read(transaction, 'a');
    assert.equal(ledger.settle(transaction), 'a');
  });
});
