/** The progress lines `npm run reconstruct` prints from the stage jobs' JSON progress logs. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { progressReporter } from '../../local/reconstruct/progress.js';

describe('npm run reconstruct: stage progress', () => {
  it('prints a long stage each time it passes another tenth 10 s or more after its last line; quick stages stay quiet', () => {
    const printed: string[] = [];
    const report = progressReporter((line) => printed.push(line), 10_000);
    const at = (seconds: number, stage: string, progress: number, extra: Record<string, unknown> = {}) =>
      report({ severity: 'INFO', message: 'progress', stage, progress, ...extra }, `0:${seconds}`, seconds * 1000);
    // A quick stage: every tenth within a second.
    for (let i = 0; i <= 10; i++) at(1, 'filter', i / 10);
    at(12, 'train', 0.02);
    at(15, 'train', 0.11, { step: 200 }); // a tenth passed, but only 3 s after the stage began
    at(23, 'train', 0.15, { step: 300, gaussians: 1200, loss: 0.12345 });
    at(24, 'train', 0.31, { step: 620 }); // 1 s after the last line
    at(40, 'train', 0.33, { step: 660 });
    at(60, 'train', 1);
    report({ severity: 'INFO', message: 'training', stage: 'train', progress: 0.9 }, '0:61', 61_000);
    report({ severity: 'WARNING', message: 'progress', stage: 'train' }, '0:62', 62_000);
    assert.deepEqual(printed, [
      '[0:23] train 10% (step 300, 1200 Gaussians, loss 0.123)',
      '[0:40] train 30% (step 660)',
    ]);
  });
});
