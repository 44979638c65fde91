/**
 * Wraps an HTTP function body so every failure becomes the JSON error shape: HttpError as is, an
 * unreachable Redis or Firestore as 503 + Retry-After, anything else as a logged 500.
 */
import type { Request, Response } from '@google-cloud/functions-framework';
import type { Logger } from '../../lib/log.js';
import { RedisUnavailableError } from '../redis/connection.js';
import { HttpError, sendError } from './errors.js';

const RETRY_AFTER_SECONDS = '5';
/** gRPC UNAVAILABLE and DEADLINE_EXCEEDED, as the Firestore client reports an unreachable service. */
const GRPC_TRANSIENT = new Set([4, 14]);

export function storeUnavailable(error: unknown): boolean {
  if (error instanceof RedisUnavailableError) return true;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' && GRPC_TRANSIENT.has(code);
}

export function httpHandler(
  log: Logger,
  run: (req: Request, res: Response) => Promise<void>,
): (req: Request, res: Response) => Promise<void> {
  return async (req, res) => {
    try {
      await run(req, res);
    } catch (error) {
      if (error instanceof HttpError) return sendError(res, error);
      if (storeUnavailable(error)) {
        log.error('store unavailable', { error: (error as Error).message });
        return sendError(
          res,
          new HttpError(503, 'UNAVAILABLE', 'a backing store is unreachable; retry later', {
            'Retry-After': RETRY_AFTER_SECONDS,
          }),
        );
      }
      log.error('unexpected error', { error });
      sendError(res, new HttpError(500, 'INTERNAL', 'internal error'));
    }
  };
}
