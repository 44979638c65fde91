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
