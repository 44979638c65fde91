/**
 * Memorystore discovery: given an instance name, read its host, port, in-transit TLS CA and AUTH
 * string from the Cloud Memorystore for Redis API instead of configuring them by hand.
 * `CLOUD_REDIS_EMULATOR_HOST` points the real client at a local server speaking the same REST API.
 */
import { CloudRedisClient } from '@google-cloud/redis';
import { restClientOptions } from '../google/emulator.js';

export interface DiscoveredRedis {
  url: string;
  password?: string;
  tlsCa?: string;
}

export async function discoverRedis(instance: string, emulatorHost?: string): Promise<DiscoveredRedis> {
  const client = new CloudRedisClient(restClientOptions(emulatorHost));
  try {
    const [found] = await client.getInstance({ name: instance });
    if (!found.host || !found.port)
      throw new Error(`Memorystore instance ${instance} has no endpoint yet (state ${String(found.state)})`);
    const tls = found.transitEncryptionMode === 'SERVER_AUTHENTICATION';
    const ca = found.serverCaCerts?.map((cert) => cert.cert ?? '').join('\n') || undefined;
    const password = found.authEnabled
      ? ((await client.getInstanceAuthString({ name: instance }))[0].authString ?? undefined)
      : undefined;
    return {
      url: `${tls ? 'rediss' : 'redis'}://${found.host}:${found.port}`,
      ...(password ? { password } : {}),
      ...(tls && ca ? { tlsCa: ca } : {}),
    };
  } finally {
    await client.close();
  }
}
