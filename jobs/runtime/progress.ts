/**
 * Progress as the contract wants it: JSON lines on stdout that the workflow and the local
 * launcher forward; a bar instead when a person runs a stage in a terminal.
 */
import type { Logger } from '../../lib/log.js';

export type ReportProgress = (fraction: number, note?: string) => void;

/** Whole percent steps are plenty for a forwarded log, and keep it short. */
export function createProgress(options: {
  log: Logger;
  stage: string;
  tty?: { write(text: string): void; columns?: number };
}): ReportProgress & { done(): void } {
  let lastPercent = -1;
  const report = (fraction: number, note?: string): void => {
    const clamped = Math.min(1, Math.max(0, fraction));
    const percent = Math.floor(clamped * 100);
    if (percent === lastPercent) return;
    lastPercent = percent;
    if (options.tty) options.tty.write('\r' + renderBar(clamped, `${options.stage}${note ? ': ' + note : ''}`));
    else options.log.info('progress', { stage: options.stage, progress: Number(clamped.toFixed(3)), note });
  };
  return Object.assign(report, {
    done: () => {
      if (options.tty && lastPercent >= 0) options.tty.write('\n');
    },
  });
}

export function renderBar(fraction: number, label: string, width = 30): string {
  const filled = Math.round(fraction * width);
  const percent = String(Math.floor(fraction * 100)).padStart(3);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${percent}% ${label}`.padEnd(72);
}
