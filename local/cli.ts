#!/usr/bin/env node
/**
 * `splatflow` (package.json `bin`): one command for the whole journey, locally or against a deployment.
 *   splatflow reconstruct VIDEO [...]          the local command (`npm run reconstruct`)
 *   splatflow submit INPUT --trigger URL       start a request (a local file is uploaded first: --upload-to)
 *   splatflow watch STATUS                     follow it (a status URL, or an upload's gs:// status object)
 *   splatflow download STATUS --out DIR        fetch its results through their signed URLs
 *   splatflow view FOLDER                      look at them in the browser
 * Exit codes: 0 done, 1 the request or a call failed, 2 bad arguments.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { depthModelFromEnv, requestParams, TRAIN_PRESETS, type TrainPreset } from './reconstruct/params.js';
import { reconstructCommand } from './reconstruct.js';
import { AUTH_MODES, CliError, isLoopback, type AuthMode, type Connection } from './cli/client.js';
import { download, submit, view, watch, type Output } from './cli/commands.js';
import { printableLines } from './cli/printable.js';

const USAGE = `usage: splatflow <command> [options]
  reconstruct VIDEO [--out DIR] [--preset preview|standard|high] [--frames N] [--iterations N] [--verbose]
  submit INPUT --trigger URL [--upload-to gs://BUCKET/FOLDER/] [--session ID] [--preset P | --params JSON]
         [--webhook URL] [--idempotency-key KEY] [--watch]
  submit FILE --upload-to gs://BUCKET/uploads/SESSION/ [--webhook URL] [--watch]   (the upload starts it)
  watch STATUS_URL | gs://BUCKET/status/….json [--interval SECONDS]
  download STATUS_URL | gs://… [--out DIR]
  view FOLDER [--port N]
options for every command: --json (one JSON object per line), --auth local|gcloud|adc|none (default: local
  for a loopback URL, else adc), --caller EMAIL (--auth local), --audience URL, --storage-api URL`;

const OPTIONS = {
  json: { type: 'boolean', default: false },
  auth: { type: 'string' },
  caller: { type: 'string', default: 'local-user@localhost' },
  'local-header': { type: 'string', default: 'x-splatflow-caller' },
  audience: { type: 'string' },
  'storage-api': { type: 'string' },
  trigger: { type: 'string' },
  'upload-to': { type: 'string' },
  session: { type: 'string', default: 'cli' },
  preset: { type: 'string' },
  params: { type: 'string' },
  webhook: { type: 'string' },
  'idempotency-key': { type: 'string' },
  'status-prefix': { type: 'string', default: 'status/' },
  watch: { type: 'boolean', default: false },
  interval: { type: 'string', default: '2' },
  out: { type: 'string', default: 'splatflow-results' },
  port: { type: 'string' },
  help: { type: 'boolean', default: false },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

function connection(values: Values): Connection {
  const { auth } = values;
  if (auth !== undefined && !(AUTH_MODES as readonly string[]).includes(auth)) {
    throw new CliError(`--auth must be one of ${AUTH_MODES.join(', ')}`, 2);
  }
  return {
    ...(auth === undefined ? {} : { auth: auth as AuthMode }),
    caller: values.caller,
    localHeader: values['local-header'],
    ...(values.audience ? { audience: values.audience } : {}),
    ...(values['storage-api'] ? { storageApi: values['storage-api'] } : {}),
  };
}

function params(values: Values): Record<string, unknown> | undefined {
  if (values.params !== undefined) {
    try {
      const parsed = JSON.parse(values.params) as unknown;
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
    } catch {
      // reported below
    }
    throw new CliError('--params must be a JSON object', 2);
  }
  if (values.preset === undefined) return undefined;
  if (!(TRAIN_PRESETS as readonly string[]).includes(values.preset)) {
    throw new CliError(`--preset must be one of ${TRAIN_PRESETS.join(', ')}`, 2);
  }
  // What `splatflow reconstruct` sends for the preset. The local stack has a depth model only when
  // SPLATFLOW_DEPTH_MODEL_URI names one; a deployment has its own (Terraform's stage environment).
  const chosen = requestParams({ preset: values.preset as TrainPreset, depthModel: depthModelFromEnv() });
  if (!(values.trigger && isLoopback(values.trigger))) delete chosen.skip_depth;
  return chosen;
}

function interval(values: Values): number {
  const seconds = Number(values.interval);
  if (!(seconds > 0 && seconds <= 3600)) throw new CliError('--interval must be seconds between 0 and 3600', 2);
  return seconds * 1000;
}

const exitOf = (status: { status: string }) => (status.status === 'COMPLETED' ? 0 : 1);

export async function cli(argv: string[], out: Output): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'reconstruct') return reconstructCommand(rest);
  const { values, positionals } = parseArgs({ args: rest, options: OPTIONS, allowPositionals: true, strict: true });
  const [subject] = positionals;
  if (values.help || !command) {
    out.write(`${USAGE}\n`);
    return command ? 0 : 2;
  }
  if (positionals.length !== 1 || !subject) throw new CliError(USAGE, 2);
  const output = { ...out, json: values.json };
  switch (command) {
    case 'submit': {
      const conn = connection(values);
      const submitted = await submit(
        conn,
        {
          input: subject,
          trigger: values.trigger,
          uploadTo: values['upload-to'],
          session: values.session,
          params: params(values),
          webhook: values.webhook,
          idempotencyKey: values['idempotency-key'],
          statusPrefix: values['status-prefix'],
        },
        output,
      );
      if (!values.watch) return 0;
      return exitOf(await watch(conn, submitted.status, { intervalMs: interval(values) }, output));
    }
    case 'watch':
      return exitOf(await watch(connection(values), subject, { intervalMs: interval(values) }, output));
    case 'download':
      await download(connection(values), subject, resolve(values.out), output);
      return 0;
    case 'view':
      await view(subject, values.port ? { port: Number(values.port) } : {}, output);
      return 0;
    default:
      throw new CliError(`unknown command ${command}\n${USAGE}`, 2);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out: Output = {
    json: false,
    tty: Boolean(process.stdout.isTTY),
    columns: process.stdout.columns ?? 80,
    write: (text) => void process.stdout.write(text),
  };
  const code = await cli(process.argv.slice(2), out).catch((error: Error) => {
    process.stderr.write(`splatflow: ${printableLines(error.message)}\n`);
    return error instanceof CliError
      ? error.exitCode
      : (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
        ? 2
        : 1;
  });
  process.exit(code);
}
