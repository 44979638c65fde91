import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../../lib/log.js';
import { connectRedis, RedisUnavailableError } from '../../functions/redis/connection.js';
import { startFirestore, type FirestoreEmulator } from '../../local/services/firestore-emulator.js';
import { serveFunctions, type ServedFunctions } from '../../local/services/functions.js';
import { call } from '../../local/json-http.js';
import { startRedis, type RedisServer } from '../../local/services/redis-server.js';

// Memorystore in production: in-transit TLS with its own CA, and an AUTH string; the functions
// connect by the instance's IP (https://cloud.google.com/memorystore/docs/redis/in-transit-encryption).
const password = 'auth-string-for-tests';
let dir: string;
const servers: RedisServer[] = [];

interface Certificates {
  caFile: string;
  certFile: string;
  keyFile: string;
}

const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });

function makeCa(folder: string, name: string): { caFile: string; caKey: string } {
  mkdirSync(folder, { recursive: true });
  const caFile = join(folder, 'ca.pem');
  const caKey = join(folder, 'ca.key');
  openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    `/CN=${name}`,
    '-keyout',
    caKey,
    '-out',
    caFile,
  );
  return { caFile, caKey };
}

/** A server certificate signed by `ca`: subject CN `cn`, and IP SANs `sans` (none: the CN-only shape). */
function makeServer(folder: string, ca: { caFile: string; caKey: string }, cn: string, sans: string[]): Certificates {
  mkdirSync(folder, { recursive: true });
  const file = (name: string) => join(folder, name);
  openssl(
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    `/CN=${cn}`,
    '-keyout',
    file('server.key'),
    '-out',
    file('server.csr'),
  );
  const extensions = sans.length ? ['-extfile', file('san.cnf')] : [];
  if (sans.length) writeFileSync(file('san.cnf'), `subjectAltName=${sans.map((ip) => `IP:${ip}`).join(',')}\n`);
  openssl(
    'x509',
    '-req',
    '-in',
    file('server.csr'),
    '-CA',
    ca.caFile,
    '-CAkey',
    ca.caKey,
    '-CAcreateserial',
    '-days',
    '1',
    ...extensions,
    '-out',
    file('server.pem'),
  );
  return { caFile: ca.caFile, certFile: file('server.pem'), keyFile: file('server.key') };
}

async function serve(tls: Certificates): Promise<RedisServer> {
  const server = await startRedis({ password, tls });
  servers.push(server);
  assert.match(server.url, /^rediss:\/\//);
  return server;
}

let instanceCa: { caFile: string; caKey: string };
let otherCa: { caFile: string; caKey: string };

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'splatflow-tls-'));
  instanceCa = makeCa(join(dir, 'instance-ca'), 'memorystore-instance-ca');
  otherCa = makeCa(join(dir, 'other-ca'), 'someone-else');
});
after(async () => {
  for (const server of servers) await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('the queue function over TLS', () => {
  let firestore: FirestoreEmulator;
  let functions: ServedFunctions;
  before(async () => {
    const redis = await serve(makeServer(join(dir, 'san'), instanceCa, '127.0.0.1', ['127.0.0.1']));
    firestore = await startFirestore();
    functions = await serveFunctions(['queue'], {
      FIRESTORE_EMULATOR_HOST: firestore.host,
      AUTO_DISPATCH: 'false',
      // The password comes separately (Secret Manager in the cloud), not in the URL.
      REDIS_URL: `rediss://127.0.0.1:${redis.port}`,
      REDIS_PASSWORD: password,
      REDIS_TLS_CA: readFileSync(instanceCa.caFile, 'utf8'),
    });
  });
  after(async () => {
    await functions.close();
    firestore.stop();
  });

  it('works over TLS with an AUTH password', async () => {
    const base = functions.url('queue');
    const queued = await call<{ request_id: string }>(`${base}/enqueue`, {
      method: 'POST',
      body: { session_id: 's', input: { uri: 'gs://uploads-bucket/v.mp4' } },
    });
    assert.equal(queued.status, 201);
    const taken = await call<{ request_id: string; status: string }>(`${base}/next`);
    assert.equal(taken.body.request_id, queued.body.request_id);
    assert.equal(taken.body.status, 'PROCESSING');
  });
});

describe('the server identity, connecting by IP as to Memorystore', () => {
  let logged: string[] = [];
  const log = createLogger({ level: 'WARNING', sink: (line) => logged.push(line) });
  /** PING through the functions' own connection code, trusting only the instance's CA. */
  async function ping(server: RedisServer): Promise<string> {
    logged = [];
    const redis = connectRedis(
      {
        url: `rediss://127.0.0.1:${server.port}`,
        password,
        tlsCa: readFileSync(instanceCa.caFile, 'utf8'),
        connectTimeoutMs: 1500,
      },
      log,
    );
    try {
      return await redis.run((client) => client.ping());
    } finally {
      await redis.close();
    }
  }

  it('accepts a certificate naming the IP in a SAN', async () => {
    const server = await serve(makeServer(join(dir, 'san-only'), instanceCa, 'redis-instance', ['127.0.0.1']));
    assert.equal(await ping(server), 'PONG');
  });

  it('accepts a certificate naming the IP only in its subject CN', async () => {
    const server = await serve(makeServer(join(dir, 'cn-only'), instanceCa, '127.0.0.1', []));
    assert.equal(await ping(server), 'PONG');
  });

  /** Refused for the reason given (logged by the connection), not merely unreachable. */
  async function refused(server: RedisServer, reason: RegExp): Promise<void> {
    await assert.rejects(ping(server), RedisUnavailableError);
    assert.ok(
      logged.some((line) => reason.test(line)),
      `expected a connection error matching ${reason}, logged: ${logged.join('\n')}`,
    );
  }

  it('refuses a certificate for another IP, in CN or SAN', async () => {
    await refused(await serve(makeServer(join(dir, 'cn-other'), instanceCa, '10.0.0.7', [])), /not 127\.0\.0\.1/);
    // A SAN list that does not name the IP wins over a CN that does.
    const san = await serve(makeServer(join(dir, 'san-other'), instanceCa, '127.0.0.1', ['10.0.0.7']));
    await refused(san, /IP SANs 10\.0\.0\.7, not 127\.0\.0\.1/);
  });

  it('refuses a certificate from another CA, even one naming the right IP', async () => {
    const server = await serve(makeServer(join(dir, 'other-ca-server'), otherCa, '127.0.0.1', ['127.0.0.1']));
    await refused(server, /self[- ]signed|unable to (get|verify)/i);
  });
});
