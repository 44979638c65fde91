/**
 * A full disk in a stage: the frames stage on the real watch video with its work folder on a 3 MB tmpfs
 * (mounting one needs root; where it cannot, the test says why and skips). The stage fails as refused, with a
 * cause a user can act on and no path of the job's disk, gives its space back, and Cloud Run's retry of
 * the same task answers that cause without filling the disk again.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { DISK_FULL_CAUSE } from '../../jobs/runtime/errors.js';
import { WATCH_VIDEO } from '../support/media.js';
import { runStageProcess } from '../support/stage-process.js';

const run = promisify(execFile);
let work: string;
let disk: string;
/** Why no tmpfs could be mounted (not root, or no CAP_SYS_ADMIN in a container); undefined once it is. */
let unmountable: string | undefined;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'disk-full-'));
  disk = join(work, 'disk');
  await mkdir(disk);
  await run('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', disk]).catch((error: Error) => {
    unmountable = `cannot mount a small tmpfs here (needs root): ${error.message.split('\n')[0]}`;
  });
});
after(async () => {
  if (!unmountable) await run('umount', [disk]).catch(() => undefined);
  await rm(work, { recursive: true, force: true });
});

describe('a stage whose disk fills up', () => {
  it('is FAILED as refused with "no space left", gives its space back, and is not retried into the same wall', async (t) => {
    if (unmountable) return t.skip(unmountable);
    const prefix = join(work, 'request') + '/';
    const attempt = (n: number) =>
      runStageProcess('frames', {
        input: WATCH_VIDEO,
        prefix,
        env: { SPLATFLOW_SCRATCH: disk, CLOUD_RUN_EXECUTION: 'frames-ex-1', CLOUD_RUN_TASK_ATTEMPT: String(n) },
      });
    const first = await attempt(0);
    assert.equal(first.code, 2, first.stderr);
    const cause = first.stderr.trim().split('\n').at(-1);
    assert.equal(cause, `frames failed: ${DISK_FULL_CAUSE}`);
    const record = JSON.parse(await readFile(join(prefix, 'frames', 'error.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual([record.refused, record.message], [true, DISK_FULL_CAUSE]);
    assert.equal(existsSync(join(prefix, 'frames', 'manifest.json')), false, 'no manifest: nothing looks finished');
    assert.deepEqual(await readdir(disk), [], 'its work folder is gone: the next stage on this disk has the room');

    const retry = await attempt(1);
    assert.equal(retry.code, 2);
    assert.equal(retry.stderr.trim().split('\n').at(-1), `frames failed: ${DISK_FULL_CAUSE}`);
    assert.match(retry.stdout + retry.stderr, /refused by an earlier attempt of this execution; not run again/);
  });
});
