/**
 * What a finished request left in the local bucket, found by the stages' documented file names,
 * and the figures of its report.json a user looks for first.
 */
import { resultFiles } from '../../lib/results.js';
import type { SfmMetrics } from '../../jobs/sfm/schema.js';

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
  ['frames in the video', 'frames', 'metrics.video.frames_decoded'],
  ['frames extracted', 'frames', 'metrics.count'],
  ['frames kept by the filter', 'filter', 'metrics.count_kept'],
  ['frames replaced by a sharper one nearby', 'filter', 'metrics.count_replaced'],
  ['frames added by sfm around unregistered ones', 'sfm', 'metrics.images_added'],
  ['frames registered by sfm', 'sfm', 'metrics.images_registered'],
  ['sparse points', 'sfm', 'metrics.points'],
  ['Gaussians', 'train', 'metrics.gaussians'],
  ['train steps/s', 'train', 'metrics.steps_per_second'],
  ['held-out PSNR (dB)', 'train', 'metrics.quality.test.psnr'],
  ['mesh vertices', 'mesh', 'metrics.vertices'],
  ['mesh faces', 'mesh', 'metrics.faces'],
  ['mesh held-out PSNR (dB)', 'mesh', 'metrics.quality.mesh.psnr'],
  ['mesh held-out SSIM', 'mesh', 'metrics.quality.mesh.ssim'],
  ['mesh held-out pixels covered', 'mesh', 'metrics.quality.mesh.covered'],
  ['mesh held-out PSNR on its own pixels (dB)', 'mesh', 'metrics.quality.mesh.psnr_on_mesh'],
  ['splat held-out PSNR on those pixels (dB)', 'mesh', 'metrics.quality.splat.psnr_on_mesh'],
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
  // The sfm ladder, when it did more than its planned pass; and a partial model, said plainly.
  const sfm = (manifests['sfm'] as { metrics?: Partial<SfmMetrics> } | undefined)?.metrics;
  const ladder = sfm?.ladder ?? [];
  if (sfm?.mapper) lines.push(`  sfm mapper: ${sfm.mapper}`);
  if (ladder.length > 1) {
    lines.push(
      `  sfm ladder: ${ladder.map((r) => `${r.rung} ${r.outcome.replace('_', ' ')} (${r.note})`).join(' → ')}`,
    );
  }
  if (sfm?.partial) {
    lines.push(
      `  warning: only ${sfm.images_registered} of ${sfm.images_input} frames registered; the scene is the largest connected part`,
    );
  }
  return lines;
}
