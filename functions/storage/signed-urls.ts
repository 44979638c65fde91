/**
 * V4 signed URLs: read URLs for a request's outputs, write URLs for a caller's uploads. In the
 * cloud the function's service account signs through the IAM API; locally and in tests a key
 * file signs offline.
 */
import { Storage } from '@google-cloud/storage';

export type SignUrl = (gsUri: string) => Promise<string>;

/** What an upload URL binds besides the object's name: its content type and its largest size. */
export interface UploadConditions {
  contentType: string;
  maxBytes: number;
}

/**
 * A URL the holder may PUT one object to, once, until it expires, with the `headers` it was signed with:
 * Cloud Storage refuses the PUT when one is missing or changed (403), when the body's size is outside
 * `x-goog-content-length-range` (400) and when the object exists already (`x-goog-if-generation-match: 0`:
 * 412), so the URL makes one object of a bounded size, never a second generation.
 */
export type SignUploadUrl = (
  gsUri: string,
  conditions: UploadConditions,
) => Promise<{ url: string; expiresAt: Date; headers: Record<string, string> }>;

/** The request headers a signed upload URL carries (https://cloud.google.com/storage/docs/xml-api/reference-headers). */
export const uploadHeaders = (conditions: UploadConditions): Record<string, string> => ({
  'content-type': conditions.contentType,
  'x-goog-content-length-range': `1,${conditions.maxBytes}`,
  'x-goog-if-generation-match': '0',
});

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
  return async (gsUri: string, extensionHeaders: Record<string, string> = {}) => {
    const match = GS_URI.exec(gsUri);
    if (!match?.[1] || !match[2]) throw new Error(`not a gs:// object URI: ${gsUri}`);
    const expiresAt = new Date(Date.now() + settings.ttlSeconds * 1000);
    const [url] = await storage
      .bucket(match[1])
      .file(match[2])
      .getSignedUrl({ version: 'v4', action, expires: expiresAt, extensionHeaders });
    return { url, expiresAt };
  };
}

export function urlSigner(settings: SignerSettings): SignUrl {
  const sign = signer(settings, 'read');
  return async (gsUri) => (await sign(gsUri)).url;
}

/** Write URLs (`PUT`): the object name and the upload headers are fixed by the signature. */
export function uploadUrlSigner(settings: SignerSettings): SignUploadUrl {
  const sign = signer(settings, 'write');
  return async (gsUri, conditions) => {
    const headers = uploadHeaders(conditions);
    return { ...(await sign(gsUri, headers)), headers };
  };
}
