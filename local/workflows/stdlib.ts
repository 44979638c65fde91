/**
 * The standard-library functions usable inside `${…}` expressions: exactly those `workflows/` uses,
 * with Workflows' semantics (missing key → KeyError, wrong type → TypeError, …).
 */
import { fault, tagsOf, type Value } from './errors.js';

export type ExpressionFunction = (args: Value[]) => Value;

export interface StdlibContext {
  env: Record<string, string>;
  now: () => number;
}

function isMap(value: Value): value is Record<string, Value> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function arity(name: string, args: Value[], min: number, max = min): void {
  if (args.length < min || args.length > max) {
    throw fault('TypeError', `${name} takes ${min === max ? min : `${min}-${max}`} arguments, got ${args.length}`);
  }
}

function text(name: string, value: Value): string {
  if (typeof value !== 'string') throw fault('TypeError', `${name}: expected a string, got ${typeName(value)}`);
  return value;
}

export function typeName(value: Value): string {
  if (value === null || value === undefined) return 'null';
  if (Array.isArray(value)) return 'list';
  if (typeof value === 'object') return 'map';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'double';
  return typeof value;
}

/**
 * Workflows' `http.default_retry_predicate`: rate limits, gateway errors, connection failures, timeouts
 * (https://cloud.google.com/workflows/docs/reference/stdlib/http/default_retry_predicate).
 */
export function defaultRetryPredicate(error: Value): boolean {
  const tags = tagsOf(error);
  if (tags.some((tag) => ['ConnectionError', 'ConnectionFailedError', 'TimeoutError'].includes(tag))) return true;
  const code = isMap(error) ? error.code : undefined;
  return tags.includes('HttpError') && [429, 502, 503, 504].includes(code as number);
}

/**
 * Workflows' `http.default_retry_predicate_non_idempotent`: only 429, 503 and a connection that never opened
 * (https://cloud.google.com/workflows/docs/reference/stdlib/http/default_retry_predicate_non_idempotent).
 */
export function nonIdempotentRetryPredicate(error: Value): boolean {
  const tags = tagsOf(error);
  if (tags.includes('ConnectionFailedError')) return true;
  const code = isMap(error) ? error.code : undefined;
  return tags.includes('HttpError') && [429, 503].includes(code as number);
}

export function standardLibrary(context: StdlibContext): Record<string, ExpressionFunction> {
  return {
    default: (args) => {
      arity('default', args, 2);
      return args[0] ?? args[1];
    },
    len: (args) => {
      arity('len', args, 1);
      const value = args[0];
      if (typeof value === 'string' || Array.isArray(value)) return value.length;
      if (isMap(value)) return Object.keys(value).length;
      throw fault('TypeError', `len: expected a string, list or map, got ${typeName(value)}`);
    },
    keys: (args) => {
      arity('keys', args, 1);
      if (!isMap(args[0])) throw fault('TypeError', `keys: expected a map, got ${typeName(args[0])}`);
      return Object.keys(args[0]);
    },
    get_type: (args) => {
      arity('get_type', args, 1);
      return typeName(args[0]);
    },
    string: (args) => {
      arity('string', args, 1);
      const value = args[0];
      if (typeof value === 'string') return value;
      if (typeof value === 'number' || typeof value === 'boolean') return String(value);
      throw fault('TypeError', `string: cannot convert ${typeName(value)}`);
    },
    int: (args) => {
      arity('int', args, 1);
      const value = args[0];
      const number = typeof value === 'string' ? Number(value) : value;
      if (typeof number !== 'number' || !Number.isFinite(number)) {
        throw fault('ValueError', `int: cannot convert ${JSON.stringify(value)}`);
      }
      return Math.trunc(number);
    },
    'map.get': (args) => {
      arity('map.get', args, 2);
      const [map, key] = args;
      if (!isMap(map)) throw fault('TypeError', `map.get: expected a map, got ${typeName(map)}`);
      return Object.hasOwn(map, text('map.get', key)) ? map[key as string] : null;
    },
    'text.split': (args) => {
      arity('text.split', args, 2);
      return text('text.split', args[0]).split(text('text.split', args[1]));
    },
    'text.substring': (args) => {
      arity('text.substring', args, 3);
      const source = text('text.substring', args[0]);
      const [start, end] = [args[1], args[2]];
      if (typeof start !== 'number' || typeof end !== 'number')
        throw fault('TypeError', 'text.substring: indexes must be numbers');
      return source.substring(Math.max(0, start), Math.min(source.length, end));
    },
    'text.url_encode': (args) => {
      arity('text.url_encode', args, 1);
      return encodeURIComponent(text('text.url_encode', args[0]));
    },
    'json.encode_to_string': (args) => {
      arity('json.encode_to_string', args, 1);
      return JSON.stringify(args[0]);
    },
    'json.decode': (args) => {
      arity('json.decode', args, 1);
      try {
        return JSON.parse(text('json.decode', args[0])) as Value;
      } catch {
        throw fault('ValueError', 'json.decode: not valid JSON');
      }
    },
    'sys.get_env': (args) => {
      arity('sys.get_env', args, 1, 2);
      const name = text('sys.get_env', args[0]);
      return context.env[name] ?? args[1] ?? null;
    },
    'sys.now': (args) => {
      arity('sys.now', args, 0);
      return context.now() / 1000;
    },
    'http.default_retry_predicate': (args) => {
      arity('http.default_retry_predicate', args, 1);
      return defaultRetryPredicate(args[0]);
    },
    'http.default_retry_predicate_non_idempotent': (args) => {
      arity('http.default_retry_predicate_non_idempotent', args, 1);
      return nonIdempotentRetryPredicate(args[0]);
    },
  };
}

/** Retry policies Workflows predefines, referenced as `retry: ${http.default_retry}`. */
export const RETRY_POLICIES: Record<string, { predicate: string; max_retries: number; backoff: Backoff }> = {
  'http.default_retry': {
    predicate: 'http.default_retry_predicate',
    max_retries: 5,
    backoff: { initial_delay: 1, max_delay: 60, multiplier: 1.25 },
  },
  'http.default_retry_non_idempotent': {
    predicate: 'http.default_retry_predicate_non_idempotent',
    max_retries: 5,
    backoff: { initial_delay: 1, max_delay: 60, multiplier: 1.25 },
  },
};

export interface Backoff {
  initial_delay: number;
  max_delay: number;
  multiplier: number;
}
