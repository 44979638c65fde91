/** The progress lines `npm run reconstruct` prints from the stage jobs' JSON progress logs. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { progressReporter, stageLines } from '../../local/reconstruct/progress.js';

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

  it('says a stage started when its execution is announced and done only once it reported its end, polls missed or not', () => {
    const shown = new Set<string>();
    // The answers a 1 s poll saw: frames announced; frames done and filter both started and done between two polls;
    // sfm and depth announced (the status's one `stage` field then names sfm, with filter's progress).
    const polls = [
      [{ name: 'frames' }],
      [{ name: 'frames', progress: 0.15 }, { name: 'filter', progress: 0.25 }, { name: 'depth' }, { name: 'sfm' }],
      [{ name: 'frames', progress: 0.15 }, { name: 'filter', progress: 0.25 }, { name: 'depth' }, { name: 'sfm' }],
      [
        { name: 'frames', progress: 0.15 },
        { name: 'filter', progress: 0.25 },
        { name: 'depth' },
        { name: 'sfm', progress: 0.45 },
      ],
    ];
    assert.deepEqual(
      polls.map((stages) => stageLines(stages, shown)),
      [
        ['frames started'],
        ['frames done (15% overall)', 'filter done (25% overall)', 'depth started', 'sfm started'],
        [],
        ['sfm done (45% overall)'],
      ],
    );
  });
});
