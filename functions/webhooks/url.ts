/**
 * Whether a webhook URL may be called: the one check for every way a webhook arrives (a trigger body's
 * `webhook_url`, an upload's `webhook-url` metadata), so a rule added here holds for all of them.
 */
export interface WebhookPolicy {
  enabled: boolean;
  allowHttp: boolean;
}

export type WebhookProblem = { code: 'WEBHOOKS_DISABLED' | 'INVALID_WEBHOOK_URL'; message: string };

/** Answers what is wrong with `value` as a webhook URL, or undefined when it may be used. */
export function webhookUrlProblem(value: string, policy: WebhookPolicy): WebhookProblem | undefined {
  if (!policy.enabled) return { code: 'WEBHOOKS_DISABLED', message: 'webhooks are not configured on this service' };
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return { code: 'INVALID_WEBHOOK_URL', message: 'is not a URL' };
  }
  if (url.protocol !== 'https:' && !(policy.allowHttp && url.protocol === 'http:')) {
    return { code: 'INVALID_WEBHOOK_URL', message: 'must be https' };
  }
  if (url.username || url.password) return { code: 'INVALID_WEBHOOK_URL', message: 'must not carry credentials' };
  return undefined;
}
