/**
 * Google-style ID tokens for tests: a locally generated RSA key, its JWKS served on loopback
 * (what AUTH_JWKS_URL points at), and tokens signed with it.
 */
import { createServer } from 'node:http';
import { exportJWK, generateKeyPair, SignJWT, type JWTPayload } from 'jose';

export interface IdTokenIssuer {
  jwksUrl: string;
  audience: string;
  /** A token for `email`; `claims` and `options` override the defaults (issuer, audience, expiry). */
  token(
    email: string,
    claims?: JWTPayload,
    options?: { expiresIn?: string; issuer?: string; audience?: string },
  ): Promise<string>;
  /** A well-formed token signed by a key the JWKS does not hold. */
  forgedToken(email: string): Promise<string>;
  stop(): Promise<void>;
}

export async function startIdTokenIssuer(audience = 'https://splatflow.test/trigger'): Promise<IdTokenIssuer> {
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const stranger = await generateKeyPair('RS256');
  const kid = 'test-key-1';
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('no address');

  const sign = (
    key: typeof privateKey,
    email: string,
    claims: JWTPayload = {},
    options: Parameters<IdTokenIssuer['token']>[2] = {},
  ) =>
    new SignJWT({ email, email_verified: true, ...claims })
      .setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' })
      .setIssuer(options.issuer ?? 'https://accounts.google.com')
      .setAudience(options.audience ?? audience)
      .setSubject('1234567890')
      .setIssuedAt()
      .setExpirationTime(options.expiresIn ?? '5m')
      .sign(key);

  return {
    jwksUrl: `http://127.0.0.1:${address.port}/oauth2/v3/certs`,
    audience,
    token: (email, claims, options) => sign(privateKey, email, claims, options),
    forgedToken: (email) => sign(stranger.privateKey, email),
    async stop() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
