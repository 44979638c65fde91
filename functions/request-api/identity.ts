/**
 * Who is calling. In the cloud the caller sends a Google-signed ID token (`Authorization: Bearer`);
 * its verified email is the identity. Keys come from a JWKS URL (Google's by default), so tests
 * verify tokens signed by a locally generated key served on loopback. Local mode trusts a header.
 */
import type { Request } from '@google-cloud/functions-framework';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { HttpError } from '../http/errors.js';

export interface IdentitySettings {
  mode: 'google' | 'local';
  jwksUrl: string;
  audience?: string;
  localHeader: string;
}

export type IdentifyCaller = (req: Request) => Promise<string>;

const GOOGLE_ISSUERS = ['https://accounts.google.com', 'accounts.google.com'];
const EMAIL = /^[^\s@]{1,128}@[A-Za-z0-9.-]{1,253}$/;

const unauthenticated = (message: string) =>
  new HttpError(401, 'UNAUTHENTICATED', message, { 'WWW-Authenticate': 'Bearer' });

export function identifyCaller(settings: IdentitySettings): IdentifyCaller {
  if (settings.mode === 'local') {
    return (req) => {
      const caller = req.get(settings.localHeader);
      if (!caller || !EMAIL.test(caller)) {
        return Promise.reject(
          unauthenticated(`local mode: header ${settings.localHeader} must name the caller's email`),
        );
      }
      return Promise.resolve(caller.toLowerCase());
    };
  }
  const keys = createRemoteJWKSet(new URL(settings.jwksUrl));
  return async (req) => {
    const match = /^Bearer ([A-Za-z0-9._~+/=-]{20,8192})$/.exec(req.get('authorization') ?? '');
    if (!match?.[1]) throw unauthenticated('an ID token is required: Authorization: Bearer <token>');
    let payload;
    try {
      ({ payload } = await jwtVerify(match[1], keys, {
        issuer: GOOGLE_ISSUERS,
        ...(settings.audience ? { audience: settings.audience } : {}),
        algorithms: ['RS256'],
      }));
    } catch (error) {
      throw unauthenticated(`ID token rejected: ${(error as Error).message}`);
    }
    if (typeof payload.email !== 'string' || !EMAIL.test(payload.email) || payload.email_verified !== true) {
      throw unauthenticated('ID token carries no verified email');
    }
    return payload.email.toLowerCase();
  };
}
