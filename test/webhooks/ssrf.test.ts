/**
 * Webhook URLs (SSRF): which hosts may be called, with a resolver the test controls (no lookup
 * reaches the network), and delivery connecting only to the vetted address, on a loopback
 * receiver. No packet goes to a non-loopback address: public addresses appear only in checks that
 * never connect.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { ConfigError } from '../../lib/config.js';
import { loadServiceConfig } from '../../functions/config/service.js';
import {
  blockedAddress,
  checkWebhookUrl,
  WebhookRefused,
  type Lookup,
  type ResolvedAddress,
} from '../../functions/webhooks/ssrf.js';
import { deliverWebhook } from '../../functions/webhooks/webhook.js';

/** A resolver answering from a table; every name it was asked is recorded. */
function table(entries: Record<string, string[]>): Lookup & { asked: string[] } {
  const asked: string[] = [];
  const lookup = (hostname: string): Promise<ResolvedAddress[]> => {
    asked.push(hostname);
    const addresses = entries[hostname];
    if (!addresses)
      return Promise.reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }));
    return Promise.resolve(addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })));
  };
  return Object.assign(lookup, { asked });
}

const PUBLIC = '93.184.215.14';
const resolver = table({
  'hooks.example.com': [PUBLIC],
  'v6.example.com': ['2606:4700::6810:84e5'],
  'private.example.com': ['10.1.2.3'],
  'mixed.example.com': [PUBLIC, '127.0.0.1'],
  'metadata-alias.example.com': ['169.254.169.254'],
  'mapped.example.com': ['::ffff:127.0.0.1'],
  'ula.example.com': ['fd00:ec2::254'],
});
const policy = { lookup: resolver, allowHttp: false, allowList: [] as string[] };

async function refusal(url: string, settings = policy): Promise<WebhookRefused> {
  try {
    await checkWebhookUrl(url, settings);
  } catch (error) {
    assert.ok(error instanceof WebhookRefused, String(error));
    return error;
  }
  assert.fail(`${url} was accepted`);
}

describe('blockedAddress', () => {
  it('names every non-public range, in IPv4, IPv6 and IPv4 carried in IPv6', () => {
    const blocked: Array<[string, RegExp]> = [
      ['127.0.0.1', /loopback/],
      ['127.255.255.254', /loopback/],
      ['10.0.0.1', /private/],
      ['172.16.0.1', /private/],
      ['172.31.255.255', /private/],
      ['192.168.1.1', /private/],
      ['169.254.169.254', /metadata/],
      ['169.254.1.1', /link-local/],
      ['100.64.0.1', /CGNAT/],
      ['100.127.255.255', /CGNAT/],
      ['0.0.0.0', /unspecified/],
      ['224.0.0.251', /multicast/],
      ['239.255.255.250', /multicast/],
      ['255.255.255.255', /broadcast/],
      ['240.0.0.1', /reserved/],
      ['192.0.2.1', /documentation/],
      ['198.18.0.1', /benchmarking/],
      ['::1', /loopback/],
      ['::', /unspecified/],
      ['fc00::1', /unique-local/],
      ['fd12:3456::1', /unique-local/],
      ['fd00:ec2::254', /unique-local/],
      ['fe80::1', /link-local/],
      ['fe80::1%eth0', /link-local/],
      ['ff02::1', /multicast/],
      ['::ffff:127.0.0.1', /loopback \(IPv4 inside IPv6\)/],
      ['::ffff:7f00:1', /loopback \(IPv4 inside IPv6\)/],
      ['::ffff:169.254.169.254', /metadata/],
      ['::ffff:a9fe:a9fe', /metadata/],
      ['::10.0.0.1', /private/],
      ['64:ff9b::a00:1', /private \(IPv4 inside IPv6\)/],
      ['2002:7f00:1::', /loopback \(IPv4 inside IPv6\)/],
      ['2001:db8::1', /documentation/],
      ['not-an-ip', /not an IP/],
    ];
    for (const [address, why] of blocked) assert.match(blockedAddress(address) ?? 'allowed', why, address);
    for (const address of [
      PUBLIC,
      '8.8.8.8',
      '172.32.0.1',
      '100.128.0.1',
      '2606:4700::6810:84e5',
      '::ffff:8.8.8.8',
      '2002:808:808::',
    ]) {
      assert.equal(blockedAddress(address), undefined, address);
    }
  });
});

describe('checkWebhookUrl', () => {
  it('accepts a public https host and answers the address it vetted', async () => {
    const checked = await checkWebhookUrl('https://hooks.example.com/splatflow?x=1', policy);
    assert.deepEqual(checked.pinned, { address: PUBLIC, family: 4 });
    assert.equal(checked.url.hostname, 'hooks.example.com');
    assert.equal((await checkWebhookUrl('https://v6.example.com/', policy)).pinned.family, 6);
    assert.equal((await checkWebhookUrl(`https://${PUBLIC}/`, policy)).pinned.address, PUBLIC);
  });

  it('refuses loopback, private, metadata and internal hosts in every spelling, before any lookup', async () => {
    resolver.asked.length = 0;
    const hosts = [
      'https://127.0.0.1/',
      'https://10.0.0.1/',
      'https://169.254.169.254/computeMetadata/v1/',
      'https://metadata.google.internal/computeMetadata/v1/',
      'https://metadata/',
      'https://[::1]/',
      'https://[::ffff:127.0.0.1]/',
      'https://[::ffff:a9fe:a9fe]/',
      'https://[fe80::1]/',
      'https://localhost:6379/',
      'https://LOCALHOST./',
      'https://api.localhost/',
      'https://0x7f000001/',
      'https://2130706433/',
      'https://0177.0.0.1/',
      'https://127.1/',
      'https://0/',
      'https://[::]/',
      'https://redis/',
      'https://memorystore.internal/',
      'https://printer.local/',
      'https://nas.home.arpa/',
      'https://100.100.100.100/',
      'https://224.0.0.1/',
    ];
    for (const url of hosts) {
      const error = await refusal(url);
      assert.equal(error.code, 'WEBHOOK_HOST_NOT_ALLOWED', url);
      assert.match(error.message, /only public hosts/, url);
    }
    assert.deepEqual(resolver.asked, [], 'IP literals and internal names are refused without a lookup');
  });

  it('refuses names that resolve to a non-public address, if any of their addresses is one', async () => {
    for (const [host, why] of [
      ['private.example.com', /10\.1\.2\.3 \(private\)/],
      ['mixed.example.com', /127\.0\.0\.1 \(loopback\)/],
      ['metadata-alias.example.com', /metadata/],
      ['mapped.example.com', /loopback/],
      ['ula.example.com', /unique-local/],
      ['nowhere.example.com', /not resolvable/],
    ] as const) {
      const error = await refusal(`https://${host}/hook`);
      assert.equal(error.code, 'WEBHOOK_HOST_NOT_ALLOWED');
      assert.match(error.message, why, host);
    }
  });

  it('refuses other schemes, http unless allowed, and credentials', async () => {
    assert.equal((await refusal('http://hooks.example.com/')).code, 'INVALID_WEBHOOK_URL');
    assert.equal(
      (await checkWebhookUrl('http://hooks.example.com/', { ...policy, allowHttp: true })).pinned.address,
      PUBLIC,
    );
    for (const url of ['ftp://hooks.example.com/', 'file:///etc/passwd', 'gopher://127.0.0.1:6379/', 'not a url']) {
      assert.equal((await refusal(url, { ...policy, allowHttp: true })).code, 'INVALID_WEBHOOK_URL', url);
    }
    assert.match((await refusal('https://u:p@hooks.example.com/')).message, /credentials/);
  });

  it('lets through exactly the allow-listed host:port, nothing beside it', async () => {
    const local = { ...policy, allowHttp: true, allowList: ['127.0.0.1:8080', '[::1]:9000', 'receiver.test:7000'] };
    const lookup = table({ 'receiver.test': ['127.0.0.1'] });
    assert.equal((await checkWebhookUrl('http://127.0.0.1:8080/hook', local)).pinned.address, '127.0.0.1');
    assert.equal((await checkWebhookUrl('http://[::1]:9000/hook', local)).pinned.address, '::1');
    assert.equal(
      (await checkWebhookUrl('http://receiver.test:7000/', { ...local, lookup })).pinned.address,
      '127.0.0.1',
    );
    for (const url of [
      'http://127.0.0.1:8081/',
      'http://127.0.0.1/',
      'http://localhost:8080/',
      'http://127.0.0.2:8080/',
      'http://0x7f000001:6379/',
    ]) {
      assert.equal((await refusal(url, local)).code, 'WEBHOOK_HOST_NOT_ALLOWED', url);
    }
  });

  it('the allow-list is refused at start-up outside local mode', () => {
    const env = { WEBHOOK_ALLOW_HOSTS: '127.0.0.1:8080' };
    assert.throws(() => loadServiceConfig({ ...env, AUTH_MODE: 'google' }), ConfigError);
    assert.throws(() => loadServiceConfig(env), /only accepted with AUTH_MODE=local/);
    assert.equal(loadServiceConfig({ ...env, AUTH_MODE: 'local' }).WEBHOOK_ALLOW_HOSTS, '127.0.0.1:8080');
    assert.throws(() => loadServiceConfig({ WEBHOOK_ALLOW_HOSTS: '127.0.0.1', AUTH_MODE: 'local' }), ConfigError);
  });
});

describe('deliverWebhook', () => {
  let receiver: Server;
  let port: number;
  const seen: Array<{ host?: string; path?: string; body: string }> = [];
  let answer: (res: ServerResponse) => void = (res) => res.writeHead(204).end();
  before(async () => {
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        seen.push({ host: req.headers.host, path: req.url, body });
        answer(res);
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    port = (receiver.address() as { port: number }).port;
  });
  after(async () => {
    receiver.closeAllConnections();
    await new Promise((resolve) => receiver.close(resolve));
  });

  const settings = (lookup: Lookup, allowList: string[]) => ({
    secret: 'webhook-secret-for-tests-0123456789',
    retries: 2,
    minDelayMs: 5,
    timeoutMs: 2000,
    policy: { lookup, allowHttp: true, allowList },
  });

  it('connects to the address the check vetted, not to a second lookup (the name resolves only in the table)', async () => {
    seen.length = 0;
    const lookup = table({ 'receiver.test': ['127.0.0.1'] });
    await deliverWebhook(`http://receiver.test:${port}/hook`, { ok: 1 }, settings(lookup, [`receiver.test:${port}`]));
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.host, `receiver.test:${port}`, 'the URL host is kept for Host (and TLS SNI)');
    assert.deepEqual(JSON.parse(seen[0]!.body), { ok: 1 });
    assert.deepEqual(lookup.asked, ['receiver.test'], 'one lookup per attempt: the vetted one');
  });

  it('checks again at delivery: a name that now resolves to loopback (DNS rebinding) is not called', async () => {
    seen.length = 0;
    let calls = 0;
    // Public at admission, loopback at delivery.
    const rebinding: Lookup = () => Promise.resolve([{ address: calls++ === 0 ? PUBLIC : '127.0.0.1', family: 4 }]);
    const url = `http://rebind.example.com:${port}/hook`;
    await checkWebhookUrl(url, { lookup: rebinding, allowHttp: true, allowList: [] });
    await assert.rejects(deliverWebhook(url, { ok: 2 }, settings(rebinding, [])), /127\.0\.0\.1 \(loopback\)/);
    assert.equal(calls, 2, 'refused at once, not retried');
    assert.equal(seen.length, 0, 'no request reached the receiver');
  });

  it('follows no redirect: a 3xx is a final failure, its Location never requested', async () => {
    seen.length = 0;
    answer = (res) => res.writeHead(302, { location: `http://127.0.0.1:${port}/elsewhere` }).end();
    await assert.rejects(
      deliverWebhook(`http://127.0.0.1:${port}/hook`, { ok: 3 }, settings(table({}), [`127.0.0.1:${port}`])),
      /302; redirects are not followed/,
    );
    assert.deepEqual(
      seen.map((request) => request.path),
      ['/hook'],
    );
    answer = (res) => res.writeHead(204).end();
  });

  it('retries a 503, then succeeds', async () => {
    seen.length = 0;
    let failures = 1;
    answer = (res) => (failures-- > 0 ? res.writeHead(503).end() : res.writeHead(204).end());
    await deliverWebhook(`http://127.0.0.1:${port}/hook`, { ok: 4 }, settings(table({}), [`127.0.0.1:${port}`]));
    assert.equal(seen.length, 2);
    answer = (res) => res.writeHead(204).end();
  });
});
