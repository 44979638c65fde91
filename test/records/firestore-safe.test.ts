/**
 * The shared check of free-form values against Firestore's documented rules (the one /enqueue,
 * the trigger routes and PUT /status use). The emulator the route tests run on accepts every
 * value refused here, so the rules are checked on the validator itself; the limits were checked
 * by hand against Google's own emulator (see functions/records/firestore-safe.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_DEPTH, storableProblem } from '../../functions/records/firestore-safe.js';

/** `levels` maps nested, the outermost counted: nested(1) = {leaf: 1}. */
const nested = (levels: number): Record<string, unknown> => {
  let value: Record<string, unknown> = { leaf: 1 };
  for (let i = 1; i < levels; i++) value = { a: value };
  return value;
};

const rule = (value: unknown, field = 'params') => storableProblem(value, field, `body.${field}`)?.rule;

describe('storableProblem', () => {
  it('accepts what Firestore stores: scalars, maps, arrays of maps, 20 levels, 1,500-byte field paths', () => {
    for (const value of [
      undefined,
      null,
      {},
      { preset: 'preview', steps: 7000, ratio: 0.5, on: true, none: null, list: [1, 'a', { b: [2] }] },
      { views: [0, 1, 2] },
      { __x: 1, x__: 2, _: 3, 'dots.and spaces': 4, 'ünïcode ✓': '😀' },
      nested(MAX_DEPTH),
      { [`${'k'.repeat(1500 - 'params.'.length)}`]: 1 },
    ]) {
      assert.equal(storableProblem(value, 'params', 'body.params'), undefined, JSON.stringify(value)?.slice(0, 80));
    }
  });

  it('refuses each rule it checks, naming the rule and where', () => {
    const cases: Array<[string, unknown, string, string]> = [
      ['21 levels of maps', nested(MAX_DEPTH + 1), 'max_depth', 'body.params' + '.a'.repeat(20)],
      ['an empty key', { '': 1 }, 'empty_field_name', 'body.params'],
      ['an empty key nested', { a: { b: { '': 1 } } }, 'empty_field_name', 'body.params.a.b'],
      ['a reserved name', { __x__: 1 }, 'reserved_field_name', 'body.params.__x__'],
      ['a reserved name, bare', { ____: 1 }, 'reserved_field_name', 'body.params.____'],
      ['an array in an array', { views: [[0, 1]] }, 'nested_array', 'body.params.views[0]'],
      ['an array in an array, deeper', { a: [{ b: [1, [2]] }] }, 'nested_array', 'body.params.a[0].b[1]'],
      ['a field path over 1,500 bytes', { [`${'k'.repeat(1501 - 'params.'.length)}`]: 1 }, 'field_path_too_long', ''],
      ['a lone surrogate in a value', { s: 'a\ud800b' }, 'not_utf8', 'body.params.s'],
      ['a lone surrogate in a key', { ['\udc00']: 1 }, 'not_utf8', 'body.params'],
    ];
    for (const [name, value, expected, where] of cases) {
      const found = storableProblem(value, 'params', 'body.params');
      assert.equal(found?.rule, expected, name);
      if (where) assert.equal(found?.path, where, name);
      assert.ok(found && found.message.startsWith(found.path), `${name}: the message names the place`);
    }
  });

  it('counts arrays as levels too, and the field path from the stored field', () => {
    // 19 maps around an array of scalars: 20 levels.
    let mapsAndArray: unknown = [1, 2, 3];
    for (let i = 1; i < MAX_DEPTH; i++) mapsAndArray = { a: mapsAndArray };
    assert.equal(rule(mapsAndArray), undefined);
    assert.equal(rule({ x: mapsAndArray }), 'max_depth', 'one more map');
    assert.equal(rule({ x: [mapsAndArray] }), 'max_depth');
    // The same key is fine under a short field name and too long under a long one.
    const key = 'k'.repeat(1490);
    assert.equal(rule({ [key]: 1 }, 'error'), undefined);
    assert.equal(rule({ [key]: 1 }, 'x'.repeat(20)), 'field_path_too_long');
  });

  it('stops at the limit: 5000 levels are refused at once, without walking them all', () => {
    let value: unknown = {};
    for (let i = 0; i < 5000; i++) value = { a: value };
    const started = performance.now();
    assert.equal(rule(value), 'max_depth');
    assert.ok(performance.now() - started < 50, 'bounded work');
    let arrays: unknown = [];
    for (let i = 0; i < 5000; i++) arrays = { a: [arrays] };
    assert.equal(rule(arrays), 'max_depth');
  });
});
