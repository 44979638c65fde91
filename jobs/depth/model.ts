/**
 * The depth model as onnxruntime sees it: which execution provider runs it, and the names and
 * shapes it declares, read from the session rather than assumed.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { InputRefused } from '../runtime/errors.js';

export type ProviderChoice = 'auto' | 'cuda' | 'cpu';

export interface LoadedModel {
  session: ort.InferenceSession;
  provider: 'cuda' | 'cpu';
  inputName: string;
  outputName: string;
  /** Declared input shape; strings are symbolic (dynamic) dimensions. */
  inputShape: (number | string)[];
  /** A fixed batch size, or undefined when the batch dimension is dynamic. */
  fixedBatch?: number;
  /** A fixed input size, or undefined when height and width are dynamic. */
  fixedSize?: { width: number; height: number };
}

/**
 * Whether `npm install` fetched the CUDA provider next to the binding (the CUDA image asks for
 * it; everywhere else it is skipped). Probing without it would only print a loader error.
 */
function cudaInstalled(): boolean {
  const binding = dirname(createRequire(import.meta.url).resolve('onnxruntime-node'));
  return existsSync(
    join(binding, '..', 'bin', 'napi-v6', process.platform, process.arch, 'libonnxruntime_providers_cuda.so'),
  );
}

/**
 * `auto` tries CUDA where it is installed and falls back to the CPU (no GPU attached, driver
 * missing); `cuda` insists.
 */
async function createSession(
  path: string,
  choice: ProviderChoice,
): Promise<{ session: ort.InferenceSession; provider: 'cuda' | 'cpu' }> {
  if (choice === 'cuda' || (choice === 'auto' && cudaInstalled())) {
    try {
      return { session: await ort.InferenceSession.create(path, { executionProviders: ['cuda'] }), provider: 'cuda' };
    } catch (error) {
      if (choice === 'cuda')
        throw new Error(`the CUDA execution provider is not available: ${(error as Error).message}`);
    }
  }
  try {
    return { session: await ort.InferenceSession.create(path, { executionProviders: ['cpu'] }), provider: 'cpu' };
  } catch (error) {
    throw new InputRefused(`the depth model cannot be loaded: ${(error as Error).message}`);
  }
}

export async function loadModel(path: string, choice: ProviderChoice): Promise<LoadedModel> {
  const { session, provider } = await createSession(path, choice);
  const input = session.inputMetadata[0];
  const output = session.outputMetadata[0];
  if (!input?.isTensor || !output?.isTensor) throw new InputRefused('the depth model must take and give tensors');
  if (input.type !== 'float32') throw new InputRefused(`the depth model's input is ${input.type}, not float32`);
  const shape = [...input.shape];
  if (shape.length !== 4 || (typeof shape[1] === 'number' && shape[1] !== 3)) {
    throw new InputRefused(
      `the depth model's input ${input.name} is [${shape.join(', ')}], not [batch, 3, height, width]`,
    );
  }
  const [batch, , height, width] = shape;
  return {
    session,
    provider,
    inputName: input.name,
    outputName: output.name,
    inputShape: shape,
    fixedBatch: typeof batch === 'number' && batch > 0 ? batch : undefined,
    fixedSize:
      typeof height === 'number' && typeof width === 'number' && height > 0 && width > 0
        ? { width, height }
        : undefined,
  };
}

/** Runs one batch (NCHW float32) and answers the prediction as [n][h*w] with its size. */
export async function predict(
  model: LoadedModel,
  data: Float32Array,
  count: number,
  size: { width: number; height: number },
): Promise<{ maps: Float32Array[]; width: number; height: number }> {
  const feeds = { [model.inputName]: new ort.Tensor('float32', data, [count, 3, size.height, size.width]) };
  const result = await model.session.run(feeds);
  const output = result[model.outputName];
  if (!output || output.type !== 'float32') throw new Error(`the depth model gave no float32 ${model.outputName}`);
  const dims = output.dims;
  // [n, h, w] or [n, 1, h, w]
  const height = dims[dims.length - 2] ?? 0;
  const width = dims[dims.length - 1] ?? 0;
  if (dims[0] !== count || (dims.length === 4 && dims[1] !== 1) || dims.length < 3 || dims.length > 4) {
    throw new Error(`the depth model's output ${model.outputName} has shape [${dims.join(', ')}]`);
  }
  const all = output.data as Float32Array;
  const plane = width * height;
  const maps = Array.from({ length: count }, (_, i) => all.slice(i * plane, (i + 1) * plane));
  return { maps, width, height };
}

export const ortVersion = (): string => ort.env.versions.node ?? 'unknown';
