import { request } from 'node:http';

/** Polls `probe` (every 25 ms, `seconds` at most) until it answers something. */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  seconds = 5,
): Promise<T> {
  for (let i = 0; i < seconds * 40; i++) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The status code of a GET of `url` that names `host` as its Host (fetch would not let a test set it). */
export function statusWithHost(url: string, host: string): Promise<number> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: target.hostname, port: target.port, path: `${target.pathname}${target.search}`, headers: { host } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      },
    );
    req.on('error', reject);
    req.end();
  });
}
