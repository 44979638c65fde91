/**
 * Workflows errors are plain maps (`{message, tags, ...}`) that `except: as: e` binds to a variable;
 * one class carries such a map through the interpreter's JavaScript stack.
 */

export type Value = unknown;
export type ErrorMap = Record<string, unknown> & { message?: unknown; tags?: unknown };

/** An error raised inside a workflow (by `raise`, a failing call or a runtime fault). */
export class WorkflowError extends Error {
  override name = 'WorkflowError';
  constructor(readonly value: Value) {
    super(describe(value));
  }
}

function describe(value: Value): string {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as ErrorMap).message === 'string') {
    return (value as ErrorMap).message as string;
  }
  return JSON.stringify(value);
}

/** A runtime fault tagged the way Workflows tags its own errors (TypeError, KeyError, …). */
export function fault(tag: string, message: string, extra: Record<string, unknown> = {}): WorkflowError {
  return new WorkflowError({ message, tags: [tag], ...extra });
}

/** A definition that uses something outside the supported subset, found before execution. */
export class UnsupportedError extends Error {
  override name = 'UnsupportedError';
}

export function tagsOf(value: Value): string[] {
  const tags = value && typeof value === 'object' ? (value as ErrorMap).tags : undefined;
  return Array.isArray(tags) ? tags.filter((tag): tag is string => typeof tag === 'string') : [];
}
