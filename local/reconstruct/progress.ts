/**
 * What a person watching `npm run reconstruct` sees while a stage runs: the stage jobs' JSON progress
 * lines (jobs/README.md) become a line when a stage has passed another tenth and at least
 * `intervalMs` went by since its last line (or its start), so the minutes of training are not silent
 * and second-long stages add nothing. Completion is the status line's job: 100 % is not repeated.
 */
export type ProgressEntry = Record<string, unknown>;

export function progressReporter(
  print: (line: string) => void,
  intervalMs = 10_000,
): (entry: ProgressEntry, clock: string, nowMs: number) => void {
  const stages = new Map<string, { tenth: number; at: number }>();
  return (entry, clock, nowMs) => {
    const { message, stage, progress } = entry;
    if (message !== 'progress' || typeof stage !== 'string' || typeof progress !== 'number') return;
    const last = stages.get(stage);
    if (!last) {
      stages.set(stage, { tenth: 0, at: nowMs });
      return;
    }
    const tenth = Math.floor(progress * 10);
    if (tenth >= 10 || tenth <= last.tenth || nowMs - last.at < intervalMs) return;
    stages.set(stage, { tenth, at: nowMs });
    const details = [
      typeof entry.step === 'number' ? `step ${entry.step}` : undefined,
      typeof entry.gaussians === 'number' ? `${entry.gaussians} Gaussians` : undefined,
      typeof entry.loss === 'number' ? `loss ${entry.loss.toFixed(3)}` : undefined,
    ].filter((part) => part !== undefined);
    print(`[${clock}] ${stage} ${tenth * 10}%${details.length ? ` (${details.join(', ')})` : ''}`);
  };
}

/** A stage as the status answer lists it: `progress` (of the whole request) is there once the stage reported its end. */
export interface StageEntry {
  name: string;
  progress?: number;
}

/**
 * The stage lines a status answer adds to those already `shown` (stage names and their state, which it updates):
 * `X done (45% overall)` once a stage has reported its end (the workflow reports a stage's progress only when it
 * finishes), else `X started` (the workflow announces each execution as it starts it). Read from the stage list
 * rather than the status's one `stage` field, so that a stage which starts and ends between two polls is still seen,
 * and a start is never called an end.
 */
export function stageLines(stages: readonly StageEntry[], shown: Set<string>): string[] {
  const lines: string[] = [];
  for (const { name, progress } of stages) {
    if (shown.has(`${name} done`)) continue;
    if (progress !== undefined) {
      lines.push(`${name} done (${Math.round(progress * 100)}% overall)`);
      shown.add(`${name} done`);
    } else if (!shown.has(`${name} started`)) {
      lines.push(`${name} started`);
      shown.add(`${name} started`);
    }
  }
  return lines;
}
