/**
 * What `splatflow watch` shows of a request's status (pure): a progress bar redrawn in place on a
 * terminal, a plain line per change otherwise (logs, CI), a JSON line per change with `--json`. The
 * answer's text is shown with its control characters escaped (printable.ts).
 */
import { printable } from './printable.js';

/** The fields of `GET /status` and of an upload's status object that watching needs. */
export interface WatchedStatus {
  request_id?: string;
  status: string;
  stage?: string;
  progress?: number;
  error?: { code?: string; stage?: string; message: string };
}

export const FINISHED = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'REJECTED']);

const percent = (progress: number | undefined) => `${Math.round((progress ?? 0) * 100)}%`;

/** `[#########-----------]  45% train  (PROCESSING, 3:12)` sized to `width` columns. */
export function progressBar(status: WatchedStatus, clock: string, width: number): string {
  const label = ` ${percent(status.progress).padStart(4)} ${status.stage ?? ''}  (${status.status}, ${clock})`;
  const room = Math.max(10, Math.min(40, width - label.length - 3));
  const filled = Math.round(Math.min(1, Math.max(0, status.progress ?? 0)) * room);
  return printable(`[${'#'.repeat(filled)}${'-'.repeat(room - filled)}]${label}`).slice(0, Math.max(1, width - 1));
}

/** The line a change prints without a terminal; undefined when nothing a reader sees changed. */
export function changeLine(
  status: WatchedStatus,
  previous: WatchedStatus | undefined,
  clock: string,
): string | undefined {
  const same =
    previous &&
    previous.status === status.status &&
    previous.stage === status.stage &&
    previous.progress === status.progress;
  if (same) return undefined;
  return printable(`[${clock}] ${status.status}${status.stage ? ` ${status.stage}` : ''} ${percent(status.progress)}`);
}

/** The last line of a finished request: its outcome, and for a failure the stage and the cause. */
export function outcomeLine(status: WatchedStatus): string {
  if (status.status === 'COMPLETED') return printable(`COMPLETED ${status.request_id ?? ''}`.trim());
  const stage = status.error?.stage ?? status.stage;
  return printable(`${status.status}${stage ? ` at ${stage}` : ''}: ${status.error?.message ?? 'no cause reported'}`);
}

export const elapsed = (startedMs: number, nowMs: number): string => {
  const s = Math.max(0, Math.round((nowMs - startedMs) / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
};
