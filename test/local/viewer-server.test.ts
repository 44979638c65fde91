/**
 * serveViewer: a request folder on loopback, read-only, nothing outside the folder, and only for
 * pages of this host (a Host check against DNS rebinding).
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileFor, serveViewer, ViewerServerError, type ViewerServer } from '../../local/viewer-server.js';

let work: string;
let server: ViewerServer;

/** A raw request (fetch would not let a test set Host). */
function get(path: string, options: { method?: string; host?: string } = {}) {
  const { port } = new URL(server.url);
  return new Promise<{ status: number; type: string; body: string; location?: string }>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: options.method ?? 'GET',
        headers: options.host ? { host: options.host } : {},
      },
      (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () =>
          resolve({
            status: res.statusCode!,
            type: String(res.headers['content-type']),
            body,
            location: res.headers.location,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'viewer-server-'));
  const folder = join(work, 'requests', 'r1');
  await mkdir(join(folder, 'export', 'viewer'), { recursive: true });
  await mkdir(join(folder, 'mesh'));
  await writeFile(join(folder, 'export', 'viewer', 'index.html'), '<!doctype html><title>viewer</title>');
  await writeFile(join(folder, 'export', 'scene.spz'), Buffer.from([0x1f, 0x8b, 1, 2]));
  await writeFile(join(folder, 'mesh', 'mesh.glb'), 'glTF');
  await writeFile(join(work, 'requests', 'secret.txt'), 'outside the request folder');
  // Links a results folder could hold (an archive unpacked there, a hostile download): one out, one in.
  await symlink(join(work, 'requests', 'secret.txt'), join(folder, 'export', 'leak.json'));
  await symlink(join(work, 'requests'), join(folder, 'mesh', 'up'));
  await symlink(join(folder, 'mesh', 'mesh.glb'), join(folder, 'export', 'mesh-link.glb'));
  server = await serveViewer(folder);
});
after(async () => {
  await server?.close();
  await rm(work, { recursive: true, force: true });
});

describe('serveViewer', () => {
  it('serves the viewer page as HTML at the URL it answers, and the files the page reads', async () => {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/export\/viewer\/index\.html$/);
    const page = await get(new URL(server.url).pathname);
    assert.deepEqual(
      [page.status, page.type, page.body],
      [200, 'text/html; charset=utf-8', '<!doctype html><title>viewer</title>'],
    );
    const mesh = await get('/mesh/mesh.glb');
    assert.deepEqual([mesh.status, mesh.type, mesh.body], [200, 'model/gltf-binary', 'glTF']);
    assert.equal((await get('/export/scene.spz')).type, 'application/octet-stream');
    assert.equal((await get('/')).location, '/export/viewer/index.html');
  });

  it('refuses paths outside the folder, other methods, other Host headers; 404 for what is not there', async () => {
    for (const path of ['/../secret.txt', '/%2e%2e/secret.txt', '/export/..%2f..%2fsecret.txt', '/%00', '/%zz']) {
      const answer = await get(path);
      assert.equal(answer.status, 404, path);
      assert.doesNotMatch(answer.body, /outside the request folder/);
    }
    for (const path of ['/export/leak.json', '/mesh/up/secret.txt']) {
      const answer = await get(path);
      assert.equal(answer.status, 404, `${path}: a symbolic link out of the folder`);
      assert.doesNotMatch(answer.body, /outside the request folder/);
    }
    assert.equal((await get('/export/mesh-link.glb')).body, 'glTF', 'a link within the folder is served');
    assert.equal((await get('/export/viewer/index.html', { method: 'POST' })).status, 405);
    assert.equal((await get('/export/viewer/index.html', { host: 'attacker.example:80' })).status, 403);
    assert.equal((await get('/export/nothing.json')).status, 404);
    assert.equal((await get('/export')).status, 404, 'a folder is not a file');
    assert.equal(fileFor('/a/b', '/../b2/x'), undefined);
    assert.equal(fileFor('/a/b', '/c/d'), '/a/b/c/d');
  });

  it('refuses a folder without a viewer page, saying why', async () => {
    await assert.rejects(
      serveViewer(join(work, 'requests')),
      (error: Error) =>
        error instanceof ViewerServerError && /no viewer page at .*export stage has not finished/.test(error.message),
    );
  });
});
