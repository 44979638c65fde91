/**
 * One Redis connection per function instance. Requests must never hang on a Redis that is down:
 * the offline queue is disabled, connecting has a deadline, and callers get `RedisUnavailableError`
 * (answered as 503 + Retry-After) while the client keeps reconnecting in the background.
 */
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

function newClient(settings: RedisSettings, url: URL) {
  const tls = url.protocol === 'rediss:';
  return createClient({
    url: settings.url,
    ...(settings.password ? { password: settings.password } : {}),
    disableOfflineQueue: true,
    socket: {
      connectTimeout: settings.connectTimeoutMs,
      reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 2000),
      ...(tls ? { tls: true as const, ...(settings.tlsCa ? { ca: settings.tlsCa } : {}) } : {}),
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
