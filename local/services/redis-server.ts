/**
 * A private redis-server (the local stack's, or one test file's): free loopback port, no persistence,
 * stopped after. Nothing here touches a server somebody else started.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './ports.js';

export interface RedisServerOptions {
  /** The port to try first (a free one by default); a fresh free one if it is taken. */
  port?: number;
  password?: string;
  /** Serve TLS only, with these PEM files (the plain port is closed). */
  tls?: { certFile: string; keyFile: string; caFile: string };
}

export interface RedisServer {
  port: number;
  url: string;
  stop(): Promise<void>;
  /** Start again on the same port (after stop), as a restarted or failed-over server would. */
  restart(): Promise<void>;
}

/** redis-server stopped before it listened (as when its port was taken), rather than never answering. */
class RedisExited extends Error {}

export async function startRedis(options: RedisServerOptions = {}): Promise<RedisServer> {
  let port = options.port ?? (await freePort());
  const args = () => [
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--daemonize',
    'no',
    // notice: the level of its "Ready to accept connections".
    '--loglevel',
    'notice',
    ...(options.password ? ['--requirepass', options.password] : []),
    // With TLS the plain port is closed and the TLS one serves.
    ...(options.tls
      ? [
          '--port',
          '0',
          '--tls-port',
          String(port),
          '--tls-cert-file',
          options.tls.certFile,
          '--tls-key-file',
          options.tls.keyFile,
          '--tls-ca-cert-file',
          options.tls.caFile,
          '--tls-auth-clients',
          'no',
        ]
      : ['--port', String(port)]),
  ];

  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    const started = spawn('redis-server', args(), { stdio: ['ignore', 'pipe', 'inherit'] });
    child = started;
    // redis-server logs to stdout, its reason to exit included: the last of it goes into the error. Ready
    // is its own word that it listens: a probe of the port could reach another test's server, which took the
    // port first (this one then exits, but maybe only after the probe answered).
    let said = '';
    const ready = new Promise<void>((resolve) =>
      started.stdout?.on('data', (chunk: Buffer) => {
        said = (said + chunk.toString()).slice(-2000);
        if (said.includes('Ready to accept connections')) resolve();
      }),
    );
    const exited = new Promise<never>((_, reject) =>
      started.once('exit', (code) =>
        reject(new RedisExited(`redis-server exited with ${code}: ${said.trim().split('\n').at(-1) ?? ''}`)),
      ),
    );
    exited.catch(() => undefined);
    const waited = new AbortController();
    try {
      await Promise.race([
        ready,
        exited,
        sleep(10_000, undefined, { signal: waited.signal }).then(() => {
          throw new Error(`redis-server did not listen on ${port}`);
        }),
      ]);
    } finally {
      waited.abort();
    }
  };
  const stop = async (): Promise<void> => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGKILL');
    await exited;
  };
  process.once('exit', () => child?.kill('SIGKILL'));

  // A free port can be taken between freePort() and redis-server's bind (servers started beside it pick ports
  // too): then redis-server exits at once, and a fresh port is tried.
  for (let attempt = 1; ; attempt++) {
    try {
      await start();
      break;
    } catch (error) {
      if (attempt === 5 || !(error instanceof RedisExited)) throw error;
      port = await freePort();
    }
  }
  const auth = options.password ? `:${encodeURIComponent(options.password)}@` : '';
  return {
    port,
    url: `${options.tls ? 'rediss' : 'redis'}://${auth}127.0.0.1:${port}`,
    stop,
    restart: start,
  };
}
