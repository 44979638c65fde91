/**
 * V4 signed read URLs for a request's outputs. In the cloud the function's service account signs
 * through the IAM API; locally and in tests a key file signs offline.
 */
import { Storage } from '@google-cloud/storage';

export type SignUrl = (gsUri: string) => Promise<string>;

const GS_URI = /^gs:\/\/([a-z0-9._-]{3,222})\/(.+)$/;

export function urlSigner(settings: { projectId: string; keyFile?: string; ttlSeconds: number }): SignUrl {
  const storage = new Storage({
    projectId: settings.projectId,
    ...(settings.keyFile ? { keyFilename: settings.keyFile } : {}),
  });
  return async (gsUri) => {
    const match = GS_URI.exec(gsUri);
    if (!match?.[1] || !match[2]) throw new Error(`not a gs:// object URI: ${gsUri}`);
    const [url] = await storage
      .bucket(match[1])
      .file(match[2])
      .getSignedUrl({ version: 'v4', action: 'read', expires: Date.now() + settings.ttlSeconds * 1000 });
    return url;
  };
}
