/**
 * What a finished request left in the local bucket, found by the stages' documented file names,
 * and the figures of its report.json a user looks for first.
 */
import { resultFiles } from '../../lib/results.js';

/** The user-facing files under a request's folder, by the stage contract's names. */
export const outputPaths = (requestFolder: string) => resultFiles(requestFolder);

/** Reads a number at a dotted path of a stage manifest, if it has one. */
function numberAt(manifest: unknown, path: string): number | undefined {
  let value = manifest;
  for (const key of path.split('.')) value = (value as Record<string, unknown> | undefined)?.[key];
  return typeof value === 'number' ? value : undefined;
}

/** Where each stage's manifest keeps the figures a user looks for first. */
const FIGURES: Array<[label: string, stage: string, path: string]> = [
  ['frames extracted', 'frames', 'metrics.count'],
  ['frames kept by the filter', 'filter', 'metrics.count_kept'],
  ['frames registered by sfm', 'sfm', 'metrics.images_registered'],
  ['sparse points', 'sfm', 'metrics.points'],
  ['Gaussians', 'train', 'metrics.gaussians'],
  ['train steps/s', 'train', 'metrics.steps_per_second'],
  ['held-out PSNR (dB)', 'train', 'metrics.quality.test.psnr'],
  ['mesh vertices', 'mesh', 'metrics.vertices'],
  ['mesh faces', 'mesh', 'metrics.faces'],
];

/** One line per stage with the workflow's timing, then the figures the manifests hold. */
export function runSummary(
  timings: Record<string, { seconds: number; skipped?: boolean }>,
  manifests: Record<string, unknown>,
): string[] {
  const lines = Object.entries(timings).map(
    ([stage, timing]) =>
      `  ${stage.padEnd(7)} ${timing.seconds.toFixed(1).padStart(7)} s${timing.skipped ? ' (already done)' : ''}`,
  );
  for (const [label, stage, path] of FIGURES) {
    const value = numberAt(manifests[stage], path);
    if (value !== undefined) lines.push(`  ${label}: ${+value.toFixed(2)}`);
  }
  return lines;
}
