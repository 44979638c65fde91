/**
 * Owners of uploads. Every caller has a scope: a folder of its own under each input location,
 * `caller-<32 hex>`, derived from its verified identity (a hash, so emails are not spelled out in
 * object names). `POST /uploads` signs upload URLs only into the caller's scope, and a request may
 * name only objects in its caller's scope, so nobody can start work on (or learn anything about)
 * another caller's uploads. The scope is not a secret: ownership rests on these checks, not on
 * names being hard to guess.
 */
import { createHash } from 'node:crypto';

const SCOPE = /^caller-[0-9a-f]{32}$/;

export function callerScope(caller: string): string {
  return `caller-${createHash('sha256').update(`splatflow-scope\n${caller}`).digest('hex').slice(0, 32)}`;
}

/** The scope an object name (relative to its location) lies in, if its first folder is one. */
export function scopeOf(relative: string): string | undefined {
  const slash = relative.indexOf('/');
  const first = slash < 0 ? '' : relative.slice(0, slash);
  return SCOPE.test(first) ? first : undefined;
}
