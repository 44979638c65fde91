/**
 * Functions served as the cloud runs them in google mode, on local parts: a real Redis, the Firestore emulator, a
 * local Workflows API, Google-style ID tokens verified against a local JWKS and a signing key for V4 URLs.
 */
import { Firestore } from '@google-cloud/firestore';
import { startFirestore } from '../../local/services/firestore-emulator.js';
import { serveFunctions, type ServedFunctions } from '../../local/services/functions.js';
import { startIdTokenIssuer, type IdTokenIssuer } from './id-tokens.js';
import { startRedis } from '../../local/services/redis-server.js';
import { writeSigningKey } from '../../local/services/signing-key.js';
import { startWorkflowsFake, type WorkflowsFake } from './workflows-fake.js';

export interface GoogleModeStack {
  functions: ServedFunctions;
  db: Firestore;
  key: ReturnType<typeof writeSigningKey>;
  workflows: WorkflowsFake;
  issuer: IdTokenIssuer;
  /** Stops every part and removes the key. */
  close: () => Promise<void>;
}

/** Serves `targets` with the parts' addresses, google auth and the key; `env` adds the rest of the configuration. */
export async function startGoogleModeStack(targets: string[], env: Record<string, string>): Promise<GoogleModeStack> {
  const [redis, firestore, workflows, issuer] = await Promise.all([
    startRedis(),
    startFirestore(),
    startWorkflowsFake(),
    startIdTokenIssuer(),
  ]);
  const key = writeSigningKey();
  const functions = await serveFunctions(targets, {
    REDIS_URL: redis.url,
    FIRESTORE_EMULATOR_HOST: firestore.host,
    WORKFLOWS_EMULATOR_HOST: workflows.host,
    GOOGLE_CLOUD_PROJECT: 'splatflow-test',
    AUTH_MODE: 'google',
    AUTH_JWKS_URL: issuer.jwksUrl,
    AUTH_AUDIENCE: issuer.audience,
    OUTPUT_PREFIX: 'gs://splatflow-results/requests/',
    SIGNING_KEY_FILE: key.file,
    ...env,
  });
  const db = new Firestore({ projectId: 'splatflow-test' });
  const close = async () => {
    key.remove();
    await functions.close();
    await db.terminate();
    await Promise.all([redis.stop(), workflows.stop(), issuer.stop()]);
    firestore.stop();
  };
  return { functions, db, key, workflows, issuer, close };
}
