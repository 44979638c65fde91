/**
 * Webhooks: when a request ends, its final status is POSTed to the caller's `webhook_url`, signed
 * so the receiver can check it came from us:
 *   X-Splatflow-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
 * Transient failures (network, 408, 429, 5xx) are retried with backoff; other 4xx are final.
 */
import { createHmac } from 'node:crypto';
import pRetry, { AbortError } from 'p-retry';

export const SIGNATURE_HEADER = 'x-splatflow-signature';

export function signPayload(secret: string, body: string, timestamp: number): string {
  const mac = createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
  return `t=${timestamp},v1=${mac}`;
}

export interface WebhookSettings {
  secret: string;
  retries: number;
  /** First retry delay; doubled each time. */
  minDelayMs?: number;
  timeoutMs?: number;
}

export async function deliverWebhook(url: string, payload: unknown, settings: WebhookSettings): Promise<void> {
  const body = JSON.stringify(payload);
  await pRetry(
    async () => {
      const response = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          [SIGNATURE_HEADER]: signPayload(settings.secret, body, Math.floor(Date.now() / 1000)),
        },
        body,
        redirect: 'error',
        signal: AbortSignal.timeout(settings.timeoutMs ?? 10_000),
      });
      await response.body?.cancel();
      if (response.ok) return;
      const transient = response.status === 408 || response.status === 429 || response.status >= 500;
      const failure = new Error(`webhook answered ${response.status}`);
      throw transient ? failure : new AbortError(failure);
    },
    { retries: settings.retries, minTimeout: settings.minDelayMs ?? 1000, factor: 2 },
  );
}
