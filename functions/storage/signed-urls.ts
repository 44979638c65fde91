/**
 * V4 signed URLs: read URLs for a request's outputs, write URLs for a caller's uploads. In the
 * cloud the function's service account signs through the IAM API; locally and in tests a key
 * file signs offline.
 */
import { Storage } from '@google-cloud/storage';

export type SignUrl = (gsUri: string) => Promise<string>;

/** A URL the holder may PUT one object to until it expires. */
export type SignUploadUrl = (gsUri: string) => Promise<{ url: string; expiresAt: Date }>;

const GS_URI = /^gs:\/\/([a-z0-9._-]{3,222})\/(.+)$/;

interface SignerSettings {
  projectId: string;
  keyFile?: string;
  ttlSeconds: number;
}

function signer(settings: SignerSettings, action: 'read' | 'write') {
  const storage = new Storage({
    projectId: settings.projectId,
    ...(settings.keyFile ? { keyFilename: settings.keyFile } : {}),
  });
  return async (gsUri: string) => {
    const match = GS_URI.exec(gsUri);
    if (!match?.[1] || !match[2]) throw new Error(`not a gs:// object URI: ${gsUri}`);
    const expiresAt = new Date(Date.now() + settings.ttlSeconds * 1000);
    const [url] = await storage
      .bucket(match[1])
      .file(match[2])
      .getSignedUrl({ version: 'v4', action, expires: expiresAt });
    return { url, expiresAt };
  };
}

export function urlSigner(settings: SignerSettings): SignUrl {
  const sign = signer(settings, 'read');
  return async (gsUri) => (await sign(gsUri)).url;
}

/** Write URLs (`PUT`): the object name is fixed by the signature, so the holder can write nothing else. */
export function uploadUrlSigner(settings: SignerSettings): SignUploadUrl {
  return signer(settings, 'write');
}
