/**
 * Webhooks: when a request ends, its final status is POSTed to the caller's `webhook_url`, signed
 * so the receiver can check it came from us:
 *   X-Splatflow-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
 * Transient failures (network, 408, 429, 5xx) are retried with backoff; other 4xx are final. Every
 * attempt checks the URL again (ssrf.ts) and connects only to the address that check vetted;
 * redirects are never followed (a 3xx is a final failure).
 */
import { createHmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import pRetry, { AbortError } from 'p-retry';
import type { RequestRecord } from '../records/request-record.js';
import { checkWebhookUrl, WebhookRefused, type CheckedWebhook, type WebhookPolicy } from './ssrf.js';

export const SIGNATURE_HEADER = 'x-splatflow-signature';

/** What the webhook of a request that ended is sent: how it ended, at which stage, its cause or its outputs. */
export const endPayload = (record: RequestRecord) => ({
  request_id: record.request_id,
  status: record.status,
  stage: record.stage,
  finished_at: record.finished_at,
  error: record.error,
  outputs: record.outputs,
});

export function signPayload(secret: string, body: string, timestamp: number): string {
  const mac = createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
  return `t=${timestamp},v1=${mac}`;
}

export interface WebhookSettings {
  secret: string;
  retries: number;
  policy: WebhookPolicy;
  /** First retry delay; doubled each time. */
  minDelayMs?: number;
  timeoutMs?: number;
}

/** One POST to the pinned address (TLS still verifies the URL's host name); answers the status. */
function post(target: CheckedWebhook, headers: Record<string, string>, body: string, timeoutMs: number) {
  const { address, family } = target.pinned;
  const pinned = ((_host, options, callback) => {
    if (options.all) callback(null, [{ address, family }]);
    else callback(null, address, family);
  }) as LookupFunction;
  const client = target.url.protocol === 'https:' ? https : http;
  return new Promise<number>((resolve, reject) => {
    const request = client.request(
      target.url,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        lookup: pinned,
        agent: false,
        signal: AbortSignal.timeout(timeoutMs),
      },
      (response) => {
        response.resume();
        response.once('end', () => resolve(response.statusCode ?? 0));
        response.once('error', reject);
      },
    );
    request.once('error', reject);
    request.end(body);
  });
}

export async function deliverWebhook(url: string, payload: unknown, settings: WebhookSettings): Promise<void> {
  const body = JSON.stringify(payload);
  await pRetry(
    async () => {
      let target: CheckedWebhook;
      try {
        target = await checkWebhookUrl(url, settings.policy);
      } catch (error) {
        // A host that now resolves somewhere private (DNS rebinding) is never called.
        if (error instanceof WebhookRefused) throw new AbortError(error);
        throw error;
      }
      const status = await post(
        target,
        {
          'content-type': 'application/json',
          [SIGNATURE_HEADER]: signPayload(settings.secret, body, Math.floor(Date.now() / 1000)),
        },
        body,
        settings.timeoutMs ?? 10_000,
      );
      if (status >= 200 && status < 300) return;
      const transient = status === 408 || status === 429 || status >= 500;
      const failure = new Error(
        status >= 300 && status < 400
          ? `webhook answered ${status}; redirects are not followed`
          : `webhook answered ${status}`,
      );
      throw transient ? failure : new AbortError(failure);
    },
    { retries: settings.retries, minTimeout: settings.minDelayMs ?? 1000, factor: 2 },
  );
}
