/**
 * One Redis connection per function instance. Requests must never hang on a Redis that is down:
 * the offline queue is disabled, connecting has a deadline, and callers get `RedisUnavailableError`
 * (answered as 503 + Retry-After) while the client keeps reconnecting in the background.
 */
import { isIP } from 'node:net';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { createClient, ErrorReply } from 'redis';
import type { Logger } from '../../lib/log.js';

export interface RedisSettings {
  url: string;
  /** AUTH password; overrides one given in the URL (Memorystore's AUTH string comes from Secret Manager). */
  password?: string;
  /** PEM of the server CA for `rediss://` (Memorystore's in-transit TLS uses its own CA). */
  tlsCa?: string;
  connectTimeoutMs: number;
}

export class RedisUnavailableError extends Error {
  override name = 'RedisUnavailableError';
}

/**
 * The server's identity for a connection by IP. Memorystore is reached by the instance's IP
 * (`host` from the API), and its server certificate may carry that IP only as the subject CN
 * (https://cloud.google.com/memorystore/docs/redis/in-transit-encryption: the instance's own CAs
 * sign it). Node checks an IP host against IP SANs only, so such a certificate would be refused;
 * accept the IP in an IP SAN, or in the CN when the certificate has no IP SAN (RFC 6125 6.4.4).
 * A host name is checked by Node's own rules. The chain is verified separately (`ca`).
 */
export function serverIdentity(host: string, cert: PeerCertificate): Error | undefined {
  if (!isIP(host)) return checkServerIdentity(host, cert);
  const ipSans = (cert.subjectaltname ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name.startsWith('IP Address:'))
    .map((name) => canonicalIp(name.slice('IP Address:'.length)));
  const wanted = canonicalIp(host);
  if (ipSans.includes(wanted)) return undefined;
  const cn = cert.subject?.CN;
  if (ipSans.length === 0 && typeof cn === 'string' && canonicalIp(cn) === wanted) return undefined;
  const named = ipSans.length ? `IP SANs ${ipSans.join(', ')}` : `CN ${String(cn)}`;
  return Object.assign(new Error(`redis server certificate is for ${named}, not ${host}`), {
    code: 'ERR_TLS_CERT_ALTNAME_INVALID',
    host,
  });
}

/** One spelling per address (IPv6 zeros and case); anything else unchanged. */
function canonicalIp(address: string): string {
  if (isIP(address) !== 6) return address;
  return new URL(`http://[${address}]`).hostname.slice(1, -1);
}

function newClient(settings: RedisSettings, url: URL) {
  const tls = url.protocol === 'rediss:';
  return createClient({
    url: settings.url,
    ...(settings.password ? { password: settings.password } : {}),
    disableOfflineQueue: true,
    socket: {
      connectTimeout: settings.connectTimeoutMs,
      reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 2000),
      // TLS: the chain must lead to the instance's CA (only that CA when one is given: `ca` replaces
      // Node's roots), and the identity is checked against the host connected to, explicitly.
      ...(tls
        ? {
            tls: true as const,
            rejectUnauthorized: true,
            checkServerIdentity: serverIdentity,
            ...(settings.tlsCa ? { ca: settings.tlsCa } : {}),
          }
        : {}),
    },
  });
}

export type RedisClient = ReturnType<typeof newClient>;

export interface RedisConnection {
  /**
   * Runs `work` on the connected client. A connection that is not ready within the deadline, or a
   * command lost to a dropped connection, becomes RedisUnavailableError; server replies
   * (ErrorReply) pass through.
   */
  run<T>(work: (client: RedisClient) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  /** Called by the owner of the connection after every (re)connect, before it is used. */
  onReady(listener: (client: RedisClient) => Promise<void>): void;
}

export function connectRedis(settings: RedisSettings, log: Logger): RedisConnection {
  const url = new URL(settings.url);
  const client = newClient(settings, url);

  const readyListeners: Array<(client: RedisClient) => Promise<void>> = [];
  let lastErrorLog = 0;
  client.on('error', (error: Error) => {
    // Reconnect attempts raise an error each; one line every 10 s is enough to diagnose.
    const now = Date.now();
    if (now - lastErrorLog > 10_000) {
      lastErrorLog = now;
      log.warning('redis connection error', { error: error.message, host: url.hostname });
    }
  });

  // `usable` settles once the connection is up and every ready listener has run; it is replaced
  // whenever the connection drops, so all waiting requests share one promise (no listener pile-up).
  let markUsable: () => void = () => undefined;
  let usable: Promise<void>;
  const resetUsable = (): void => {
    usable = new Promise<void>((resolve) => (markUsable = resolve));
  };
  resetUsable();
  client.on('ready', () => {
    Promise.all(readyListeners.map((listener) => listener(client))).then(
      () => markUsable(),
      (error: unknown) => log.error('redis preparation failed', { error }),
    );
  });
  client.on('end', resetUsable);
  client.on('reconnecting', resetUsable);

  const deadline = (promise: Promise<void>): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new RedisUnavailableError(`redis not reachable at ${url.host}`)),
        settings.connectTimeoutMs,
      );
      void promise.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });

  return {
    async run(work) {
      if (!client.isOpen) {
        // Errors of a failed first connect reach the 'error' listener; reconnecting continues.
        client.connect().catch(() => undefined);
      }
      await deadline(usable);
      try {
        return await work(client);
      } catch (error) {
        if (error instanceof ErrorReply || error instanceof RedisUnavailableError) throw error;
        throw new RedisUnavailableError(`redis command failed: ${String(error)}`);
      }
    },
    async close() {
      // A client still reconnecting has nothing to flush; stop its retries at once.
      if (client.isReady) await client.close();
      else if (client.isOpen) client.destroy();
    },
    onReady(listener) {
      readyListeners.push(listener);
    },
  };
}
