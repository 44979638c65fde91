/** An HTTP function run by Cloud Scheduler (POST) or a person with curl (GET), answering what its work returns. */
import type { Logger } from '../../lib/log.js';
import { HttpError } from './errors.js';
import { httpHandler } from './handler.js';

export const scheduled = (log: Logger, run: () => Promise<unknown>) =>
  httpHandler(log, async (req, res) => {
    if (req.method !== 'POST' && req.method !== 'GET') {
      throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed`, { Allow: 'GET, POST' });
    }
    res.status(200).json(await run());
  });
