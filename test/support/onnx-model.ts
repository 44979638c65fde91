/**
 * Tiny ONNX models with Depth-Anything-V2's input/output contract, written as protobuf by hand
 * (no weights can be downloaded here). The graph is one ReduceMean over the channel axis, so its
 * "depth" is the mean of the three normalised channels: something a test can compute on its own.
 */

function varint(value: number): number[] {
  const bytes: number[] = [];
  let v = value;
  while (v > 127) {
    bytes.push((v & 127) | 128);
    v = Math.floor(v / 128);
  }
  bytes.push(v);
  return bytes;
}

type Field = number[];
const int = (field: number, value: number): Field => [...varint(field << 3), ...varint(value)];
const bytes = (field: number, payload: number[] | Buffer): Field => [
  ...varint((field << 3) | 2),
  ...varint(payload.length),
  ...payload,
];
const str = (field: number, text: string): Field => bytes(field, [...Buffer.from(text, 'utf8')]);
const msg = (field: number, ...fields: Field[]): Field => bytes(field, fields.flat());

const FLOAT = 1;
const ATTR_INT = 2;
const ATTR_INTS = 7;

/** A dimension: a number is fixed, a string is symbolic (dynamic). */
type Dim = number | string;

function valueInfo(field: number, name: string, dims: Dim[]): Field {
  const shape = dims.map((d) => msg(1, typeof d === 'number' ? int(1, d) : str(2, d)));
  return msg(field, str(1, name), msg(2, msg(1, int(1, FLOAT), msg(2, ...shape))));
}

export interface DepthModelOptions {
  input?: string;
  output?: string;
  inputDims?: Dim[];
  /** Output [b, 1, h, w] instead of [b, h, w]. */
  keepChannel?: boolean;
}

export function depthModel(options: DepthModelOptions = {}): Buffer {
  const input = options.input ?? 'pixel_values';
  const output = options.output ?? 'predicted_depth';
  const inputDims = options.inputDims ?? ['batch', 3, 'height', 'width'];
  const [b, , h, w] = inputDims as [Dim, Dim, Dim, Dim];
  const outputDims = options.keepChannel ? [b, 1, h, w] : [b, h, w];
  const node = msg(
    1,
    str(1, input),
    str(2, output),
    str(3, 'mean'),
    str(4, 'ReduceMean'),
    msg(5, str(1, 'axes'), int(8, 1), int(20, ATTR_INTS)),
    msg(5, str(1, 'keepdims'), int(3, options.keepChannel ? 1 : 0), int(20, ATTR_INT)),
  );
  const graph = msg(7, node, str(2, 'depth'), valueInfo(11, input, inputDims), valueInfo(12, output, outputDims));
  return Buffer.from([...int(1, 7), ...str(2, 'splatflow-test'), ...graph, ...msg(8, str(1, ''), int(2, 13))]);
}
