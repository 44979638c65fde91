import assert from 'node:assert/strict';
import { it } from 'node:test';
import { createLogger } from '../../lib/log.js';

function capture(level?: 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR') {
  const lines: string[] = [];
  const log = createLogger({ ...(level ? { level } : {}), sink: (line) => lines.push(line) });
  return { log, entries: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

it('writes one JSON object per line with the fields Cloud Logging reads', () => {
  const { log, entries } = capture();
  log.child({ request_id: 'r-1' }).warning('lease expired', { outcome: 'QUEUED' });
  const [entry] = entries();
  assert.equal(entry?.severity, 'WARNING');
  assert.equal(entry?.message, 'lease expired');
  assert.equal(entry?.request_id, 'r-1');
  assert.equal(entry?.outcome, 'QUEUED');
  assert.ok(!Number.isNaN(Date.parse(entry?.time as string)));
});

it('drops entries below the configured level', () => {
  const { log, entries } = capture('WARNING');
  log.debug('a');
  log.info('b');
  log.warning('c');
  log.error('d');
  assert.deepEqual(
    entries().map((entry) => entry.message),
    ['c', 'd'],
  );
});

it('keeps the name, message and stack of an error', () => {
  const { log, entries } = capture();
  log.error('failed', { error: new TypeError('bad input') });
  const error = entries()[0]?.error as { name: string; message: string; stack: string };
  assert.equal(error.name, 'TypeError');
  assert.equal(error.message, 'bad input');
  assert.match(error.stack, /TypeError: bad input/);
});
