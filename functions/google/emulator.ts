/**
 * Client options that point a Google API client's REST transport at a local server speaking the
 * same API (`host:port`), without credentials: the `*_EMULATOR_HOST` convention Firestore uses.
 * Nothing then asks a metadata server for credentials.
 */
import { PassThroughClient } from 'google-auth-library';

export type RestClientOptions = {
  fallback: true;
  apiEndpoint?: string;
  port?: number;
  protocol?: string;
  /** Typed loosely: each client library bundles its own google-auth-library version. */
  authClient?: never;
};

export function restClientOptions(emulatorHost: string | undefined): RestClientOptions {
  if (!emulatorHost) return { fallback: true };
  const [host, port] = emulatorHost.split(':');
  return {
    fallback: true,
    apiEndpoint: host,
    port: Number(port),
    protocol: 'http',
    authClient: new PassThroughClient() as never,
  };
}
