/**
 * Errors the Functions Framework raises before a function runs, through its own server: a bad
 * %-encoding in a path gets our JSON error shape (not Express's HTML page with a stack trace), and a
 * malformed CloudEvent is acknowledged (2xx) so Eventarc does not redeliver what can never be valid.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { serveWithStores } from '../support/functions.js';

const served = serveWithStores(['queue', 'status', 'onUpload']);

async function raw(url: string, init: RequestInit = {}) {
  const response = await fetch(url, init);
  return { status: response.status, type: response.headers.get('content-type') ?? '', text: await response.text() };
}

const ceHeaders = {
  'ce-specversion': '1.0',
  'ce-type': 'google.cloud.storage.object.v1.finalized',
  'ce-source': '//storage.googleapis.com/projects/_/buckets/splatflow-uploads',
  'ce-id': 'malformed-1',
  'ce-time': new Date().toISOString(),
};

describe('HTTP functions', () => {
  for (const [target, path] of [
    ['queue', '/status/%ZZ'],
    ['queue', '/%E0%A4%A'],
    ['status', '/status%ZZ?callback_token=x'],
  ] as const) {
    it(`${target} ${path}: a JSON 400, no HTML, no stack or paths`, async () => {
      const response = await raw(`${served.url(target)}${path}`);
      assert.equal(response.status, 400);
      assert.match(response.type, /^application\/json/);
      const body = JSON.parse(response.text) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'MALFORMED_REQUEST');
      assert.doesNotMatch(response.text, /<html|<pre|node_modules|\/work\/|at .*\.js:/i);
    });
  }
});

describe('CloudEvent functions', () => {
  const deliveries: Array<[string, RequestInit]> = [
    ['no body', { method: 'POST', headers: ceHeaders }],
    ['a text body', { method: 'POST', headers: { ...ceHeaders, 'content-type': 'text/plain' }, body: 'not an event' }],
    [
      'a legacy event the framework cannot convert',
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          context: { eventId: 'x', eventType: 'google.storage.object.finalize', resource: 'not/a/bucket' },
          data: {},
        }),
      },
    ],
  ];
  for (const [what, init] of deliveries) {
    it(`a malformed event (${what}) is acknowledged, not answered 5xx for Eventarc to redeliver`, async () => {
      const response = await raw(served.url('onUpload'), init);
      assert.ok(response.status >= 200 && response.status < 300, `status ${response.status}: ${response.text}`);
      assert.doesNotMatch(response.text, /<html|TypeError|node_modules/i);
    });
  }

  it('a path with bad %-encoding on the event function is acknowledged too', async () => {
    const response = await raw(`${served.url('onUpload')}/%ZZ`, { method: 'POST', headers: ceHeaders });
    assert.equal(response.status, 204);
  });
});
