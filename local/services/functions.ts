/**
 * Serves function targets through the Functions Framework's own server (the one `functions-framework`
 * runs), each on a free loopback port: the local stack's functions, and the tests'. The functions module
 * reads its configuration when loaded, so the environment is set first. Only loopback `Host`s are answered.
 */
import type { Server } from 'node:http';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { refuseForeignHosts } from '../loopback-host.js';

export interface ServedFunctions {
  url(target: string): string;
  close(): Promise<void>;
}

/** `ports` pins a target's port (a URL the functions must know when they load, such as STATUS_URL's). */
export async function serveFunctions(
  targets: string[],
  env: Record<string, string>,
  ports: Record<string, number> = {},
): Promise<ServedFunctions> {
  Object.assign(process.env, { LOG_LEVEL: 'ERROR', METADATA_SERVER_DETECTION: 'none' }, env);
  const { shutdown } = await import('../../functions/index.js');
  const servers = new Map<string, { server: Server; url: string }>();
  for (const target of targets) {
    const server = getTestServer(target);
    await new Promise<void>((resolve) => server.listen(ports[target] ?? 0, '127.0.0.1', resolve));
    refuseForeignHosts(server);
    const address = server.address();
    if (typeof address !== 'object' || !address) throw new Error('server has no address');
    servers.set(target, { server, url: `http://127.0.0.1:${address.port}` });
  }
  return {
    url(target) {
      const served = servers.get(target);
      if (!served) throw new Error(`target ${target} is not served`);
      return served.url;
    },
    async close() {
      for (const { server } of servers.values()) {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
      await shutdown();
    },
  };
}
