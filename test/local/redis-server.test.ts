/**
 * The private redis-server each test file and the local stack start: when its port is taken by the time it binds
 * (another file's server got there first), it moves to a fresh port instead of taking the other server for its own.
 */
import assert from 'node:assert/strict';
import { after, it } from 'node:test';
import { createClient } from 'redis';
import { startRedis, type RedisServer } from '../../local/services/redis-server.js';

const servers: RedisServer[] = [];
after(async () => {
  await Promise.all(servers.map((server) => server.stop()));
});

it("starts its own server when the port it tried is already another's", async () => {
  const first = await startRedis();
  servers.push(first);
  const second = await startRedis({ port: first.port });
  servers.push(second);
  assert.notEqual(second.port, first.port);

  const [a, b] = [createClient({ url: first.url }), createClient({ url: second.url })];
  await Promise.all([a.connect(), b.connect()]);
  try {
    await a.set('owner', 'first');
    assert.equal(await b.get('owner'), null, 'the two servers share no data');
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});
