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

/** One line, whatever the error: stderr is read by people and by the launcher's log forwarding. */
export function oneLineCause(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.replace(/\s+/g, ' ').trim() || 'unknown error';
}

/** A malformed contract or configuration is as permanent as a bad input. */
export function exitCodeFor(error: unknown): number {
  return error instanceof InputRefused || error instanceof ConfigError ? EXIT_INPUT_REFUSED : EXIT_FAILED;
}
