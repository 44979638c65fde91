import { ConfigError } from '../../lib/config.js';

/**
 * How a stage fails. The exit code tells the workflow whether retrying can help: bad input or
 * parameters never get better on a retry, anything else (storage hiccups, crashes) might.
 */
export const EXIT_INPUT_REFUSED = 2;
export const EXIT_FAILED = 1;

/** The request's input or parameters cannot be processed; the message is the user-facing cause. */
export class InputRefused extends Error {
  override name = 'InputRefused';
}

/**
 * The cause a full disk gets (the Python runtime, jobs/runtime_py/stage.py, says the same): no path of the
 * job's own disk, and what the user can change.
 */
export const DISK_FULL_CAUSE =
  "no space left on the stage's disk: this input needs more room than the job has (a shorter video, fewer or smaller photos, or a lower preset needs less)";

/** The disk filled up, in this process (ENOSPC) or in a tool it ran (its stderr says so). */
export function isDiskFull(error: unknown): boolean {
  for (let e = error; e instanceof Error; e = e.cause) {
    if ((e as NodeJS.ErrnoException).code === 'ENOSPC' || /no space left on device/i.test(e.message)) return true;
  }
  return false;
}

/** One line, whatever the error: stderr is read by people and by the launcher's log forwarding. */
export function oneLineCause(error: unknown): string {
  if (isDiskFull(error)) return DISK_FULL_CAUSE;
  const text = error instanceof Error ? error.message : String(error);
  return text.replace(/\s+/g, ' ').trim() || 'unknown error';
}

/**
 * A malformed contract or configuration is as permanent as a bad input; so is a full disk, which the
 * same input fills again on a retry of the same job.
 */
export function exitCodeFor(error: unknown): number {
  return error instanceof InputRefused || error instanceof ConfigError || isDiskFull(error)
    ? EXIT_INPUT_REFUSED
    : EXIT_FAILED;
}
