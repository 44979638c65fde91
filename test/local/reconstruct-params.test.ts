/**
 * What `npm run reconstruct` asks of the pipeline: the request params per preset and option, checked
 * against the stages' own parameter schemas, so a renamed or removed stage parameter fails here and
 * not half-way through a 9-minute run.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Ajv } from 'ajv';
import { presetWarning, requestParams } from '../../local/reconstruct/params.js';
import { sfmParamsSchema } from '../../jobs/sfm/schema.js';

describe('npm run reconstruct: request params', () => {
  it('preview sizes every stage for a CPU, keeps up to 48 frames and skips depth without a model', () => {
    const params = requestParams({ preset: 'preview' }) as Record<string, Record<string, unknown>>;
    assert.equal(params.frames?.target_frames, 48);
    assert.equal(params.train?.preset, 'preview');
    assert.equal(params.skip_depth, true);
    assert.equal(params.depth, undefined);
    const validSfm = new Ajv({ useDefaults: true }).compile(sfmParamsSchema);
    assert.ok(validSfm(structuredClone(params.sfm)), JSON.stringify(validSfm.errors));
  });

  it('the GPU presets send only the train preset; --frames and --iterations override', () => {
    assert.deepEqual(requestParams({ preset: 'standard' }), { train: { preset: 'standard' }, skip_depth: true });
    const params = requestParams({ preset: 'preview', frames: 30, iterations: 150 }) as Record<
      string,
      Record<string, unknown>
    >;
    assert.equal(params.frames?.target_frames, 30);
    assert.equal(params.frames?.max_long_side, 640, 'the other frames parameters stay');
    assert.deepEqual(params.train, { preset: 'preview', iterations: 150 });
  });

  it('a configured depth model runs the depth stage with it', () => {
    const params = requestParams({ preset: 'high', depthModel: { uri: '/models/d.onnx', sha256: 'ab'.repeat(32) } });
    assert.deepEqual(params, {
      train: { preset: 'high' },
      depth: { model_uri: '/models/d.onnx', model_sha256: 'ab'.repeat(32) },
    });
  });

  it('warns before a GPU preset trains on a CPU, and only then', () => {
    assert.match(
      presetWarning('standard', false) ?? '',
      /preset standard is sized for an NVIDIA GPU.*--preset preview/,
    );
    assert.match(presetWarning('high', false) ?? '', /preset high/);
    assert.equal(presetWarning('standard', true), undefined);
    assert.equal(presetWarning('preview', false), undefined);
  });
});
