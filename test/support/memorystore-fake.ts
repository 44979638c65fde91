/**
 * A local Cloud Memorystore for Redis API (v1 REST, as the CloudRedisClient's REST transport
 * speaks it): GET an instance and its AUTH string.
 */
import { createServer } from 'node:http';

export interface FakeInstance {
  name: string;
  host: string;
  port: number;
  authString?: string;
  caPem?: string;
}

export interface MemorystoreFake {
  host: string;
  /** Requests seen, as `METHOD path`. */
  requests: string[];
  stop(): Promise<void>;
}

export async function startMemorystoreFake(instances: FakeInstance[]): Promise<MemorystoreFake> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    requests.push(`${req.method} ${path}`);
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const auth = path.endsWith('/authString');
    const name = path.replace(/^\/v1\//, '').replace(/\/authString$/, '');
    const instance = instances.find((candidate) => candidate.name === name);
    if (req.method !== 'GET' || !instance) {
      return reply(404, { error: { code: 404, message: `Resource '${name}' was not found`, status: 'NOT_FOUND' } });
    }
    if (auth) return reply(200, { authString: instance.authString ?? '' });
    reply(200, {
      name: instance.name,
      host: instance.host,
      port: instance.port,
      state: 'READY',
      tier: 'STANDARD_HA',
      authEnabled: instance.authString !== undefined,
      transitEncryptionMode: instance.caPem ? 'SERVER_AUTHENTICATION' : 'DISABLED',
      serverCaCerts: instance.caPem ? [{ serialNumber: '1', cert: instance.caPem }] : [],
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('no address');
  return {
    host: `127.0.0.1:${address.port}`,
    requests,
    async stop() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
