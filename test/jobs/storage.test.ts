/**
 * The Storage interface behaves the same on a local folder and on Cloud Storage; the GCS side
 * is the real @google-cloud/storage client against the loopback fake of the JSON API.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Storage as GcsClient } from '@google-cloud/storage';
import { createGcsStorage } from '../../jobs/runtime/storage-gcs.js';
import { createLocalStorage } from '../../jobs/runtime/storage-local.js';
import { joinUri, parseLocation, type Storage } from '../../jobs/runtime/storage.js';
import { startFakeGcs, type FakeGcs } from '../support/fake-gcs.js';

function behavesAsStorage(name: string, setup: () => Promise<{ storage: Storage; root: string }>): void {
  describe(`${name} storage`, () => {
    let storage: Storage;
    let root: string;
    let work: string;
    before(async () => {
      ({ storage, root } = await setup());
      work = await mkdtemp(join(tmpdir(), 'storage-test-'));
    });
    after(() => rm(work, { recursive: true, force: true }));

    it('round-trips small and multi-megabyte files byte for byte', async () => {
      for (const size of [0, 1000, 6 * 1024 * 1024 + 17]) {
        const data = randomBytes(size);
        const source = join(work, `up-${size}`);
        await writeFile(source, data);
        const uri = joinUri(root, 'rt', `file-${size}.bin`);
        await storage.upload(source, uri, 'application/octet-stream');
        assert.equal(await storage.exists(uri), true);
        const back = join(work, 'down', `file-${size}`);
        await storage.download(uri, back);
        assert.deepEqual(await readFile(back), data, `size ${size}`);
      }
    });

    it('lists every object under a prefix, nested ones too, sorted, and nothing beside it', async () => {
      const source = join(work, 'x');
      await writeFile(source, 'x');
      for (const name of ['req/b.jpg', 'req/a.jpg', 'req/sub/c.jpg', 'request-other/d.jpg']) {
        await storage.upload(source, joinUri(root, name));
      }
      const listed = await storage.list(joinUri(root, 'req') + '/');
      assert.deepEqual(
        listed,
        ['req/a.jpg', 'req/b.jpg', 'req/sub/c.jpg'].map((n) => joinUri(root, n)),
      );
    });

    it('says a missing object or a folder does not exist, and lists nothing under a missing prefix', async () => {
      assert.equal(await storage.exists(joinUri(root, 'nope.bin')), false);
      assert.equal(await storage.exists(joinUri(root, 'req')), false);
      assert.deepEqual(await storage.list(joinUri(root, 'missing') + '/'), []);
    });

    it('removes a prefix and only that prefix', async () => {
      await storage.removePrefix(joinUri(root, 'req') + '/');
      assert.deepEqual(await storage.list(joinUri(root, 'req') + '/'), []);
      assert.equal(await storage.exists(joinUri(root, 'request-other/d.jpg')), true);
    });
  });
}

let gcs: FakeGcs;
const savedEnv = { ...process.env };

before(async () => {
  gcs = await startFakeGcs();
  process.env.STORAGE_EMULATOR_HOST = gcs.url;
  process.env.METADATA_SERVER_DETECTION = 'none';
});
after(async () => {
  process.env = savedEnv;
  await gcs.close();
});

behavesAsStorage('local', async () => ({
  storage: createLocalStorage(),
  root: (await mkdtemp(join(tmpdir(), 'storage-local-'))) + '/',
}));
behavesAsStorage('GCS', () =>
  Promise.resolve({ storage: createGcsStorage(new GcsClient({ projectId: 'test' })), root: 'gs://test-bucket/root/' }),
);

describe('URIs', () => {
  it('parses gs:// URIs and paths, and refuses an invalid bucket name', () => {
    assert.deepEqual(parseLocation('gs://my-bucket/requests/1/'), {
      kind: 'gs',
      bucket: 'my-bucket',
      key: 'requests/1/',
    });
    assert.deepEqual(parseLocation('file:///tmp/x/'), { kind: 'local', path: '/tmp/x/' });
    assert.throws(() => parseLocation('gs://Bad_Bucket!/x'), /invalid bucket name/);
  });

  it('the GCS uploads went through the JSON API the client really speaks', () => {
    assert.ok(
      gcs.requests.some(
        (r) => r.startsWith('POST /upload/storage/v1/b/test-bucket/o?') && r.includes('uploadType=resumable'),
      ),
    );
    assert.ok(gcs.requests.some((r) => r.startsWith('PUT /upload/storage/v1/b/test-bucket/o?')));
    assert.ok(gcs.requests.some((r) => r.includes('alt=media')));
  });
});
