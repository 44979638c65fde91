/**
 * Whether a free-form JSON value (a request's `params`, a report's `outputs`) can be stored in a
 * Firestore document, checked before anything is written or counted, so a value that passes the
 * schema cannot fail later as a 500 (or, nested thousands deep, overflow the stack of code that
 * walks it). The rules are Firestore's own:
 * - "Maximum depth of fields in a map or array: 20" (https://cloud.google.com/firestore/quotas);
 * - field names "cannot be empty", names matching `__.*__` "are
 *   reserved" (the v1 API's `Document.fields` / `MapValue.fields`), and must be valid UTF-8
 *   (https://cloud.google.com/firestore/quotas: "Constraints on field names", "Maximum size of a field
 *   path: 1,500 bytes");
 * - "An array cannot contain another array value as one of its elements"
 *   (https://cloud.google.com/firestore/docs/concepts/data-types).
 * The emulator the tests use accepts all of these, so this check is the one that keeps them out.
 * Checked by hand against Google's own emulator (gcloud, 2026-12-01): 20 levels stored, 21 refused;
 * a 1,500-byte field path stored, 1,507 refused; `__x__`, `[[0, 1]]` and `""` refused; a lone
 * surrogate answered UNKNOWN (a 500 here).
 * Pure, and never recursing deeper than the limit.
 */
import { HttpError } from '../http/errors.js';

/** Maps and arrays nested in a top-level field's value, that value counted: `{a: {b: 1}}` is 2. */
export const MAX_DEPTH = 20;
/** A field path (`params.a.b`, dots counted) "Maximum size of a field path: 1,500 bytes". */
export const MAX_FIELD_PATH_BYTES = 1500;

export type StorableRule =
  'max_depth' | 'nested_array' | 'empty_field_name' | 'reserved_field_name' | 'field_path_too_long' | 'not_utf8';

export interface StorableProblem {
  rule: StorableRule;
  /** Where, as `body.params.a.b[0]`. */
  path: string;
  message: string;
}

const RESERVED = /^__.*__$/;
/** A lone surrogate (in `u` mode a valid pair is one code point, not Cs): no UTF-8 encoding exists. */
const wellFormed = (text: string) => !/\p{Cs}/u.test(text);

const label = (path: string, key: string) =>
  /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;

const problem = (rule: StorableRule, path: string, message: string): StorableProblem => ({
  rule,
  path,
  message: `${path} ${message}`,
});

interface Where {
  /** For messages: `body.params.a`. */
  path: string;
  /** UTF-8 bytes of the stored field path so far (`params.a`); array elements add none. */
  pathBytes: number;
  /** Maps and arrays around the value. */
  depth: number;
  inArray: boolean;
}

function checkName(key: string, where: Where): StorableProblem | undefined {
  const { path } = where;
  if (key === '')
    return problem('empty_field_name', path, 'has an empty field name; Firestore field names cannot be empty');
  if (!wellFormed(key)) return problem('not_utf8', path, 'has a field name that is not valid UTF-8');
  if (RESERVED.test(key)) {
    return problem(
      'reserved_field_name',
      label(path, key),
      'is a field name Firestore reserves (names matching __.*__)',
    );
  }
  if (where.pathBytes + 1 + Buffer.byteLength(key, 'utf8') > MAX_FIELD_PATH_BYTES) {
    return problem('field_path_too_long', label(path, key), `makes a field path over ${MAX_FIELD_PATH_BYTES} bytes`);
  }
  return undefined;
}

function check(value: unknown, where: Where): StorableProblem | undefined {
  const { path, depth } = where;
  if (typeof value === 'string') {
    return wellFormed(value) ? undefined : problem('not_utf8', path, 'is a string that is not valid UTF-8');
  }
  if (value === null || typeof value !== 'object') return undefined;
  if (depth + 1 > MAX_DEPTH) {
    return problem('max_depth', path, `nests maps and arrays deeper than Firestore's limit of ${MAX_DEPTH} levels`);
  }
  if (Array.isArray(value)) {
    if (where.inArray)
      return problem('nested_array', path, 'is an array inside an array, which Firestore cannot store');
    for (const [index, item] of value.entries()) {
      const found = check(item, { ...where, path: `${path}[${index}]`, depth: depth + 1, inArray: true });
      if (found) return found;
    }
    return undefined;
  }
  for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
    const found =
      checkName(key, where) ??
      check(item, {
        path: label(path, key),
        pathBytes: where.pathBytes + 1 + Buffer.byteLength(key, 'utf8'),
        depth: depth + 1,
        inArray: false,
      });
    if (found) return found;
  }
  return undefined;
}

/**
 * The first rule `value`, stored as the top-level field `field` of a document, breaks; undefined
 * when Firestore can store it. `path` names it in the message (`body.params`).
 */
export function storableProblem(value: unknown, field: string, path: string): StorableProblem | undefined {
  return check(value, { path, pathBytes: Buffer.byteLength(field, 'utf8'), depth: 0, inArray: false });
}

/** A 400 naming the rule, before a value that Firestore would refuse is counted or written. */
export function assertStorable(value: unknown, field: string, path = `body.${field}`): void {
  const found = storableProblem(value, field, path);
  if (found) throw new HttpError(400, 'UNSTORABLE_VALUE', found.message, {}, { rule: found.rule, path: found.path });
}
