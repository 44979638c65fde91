/**
 * A stage is a function `(ctx) => Promise<StageResult>` registered by name with its parameter
 * and metric schemas. The runner does everything around it that every stage needs alike.
 */
import type { JSONSchemaType, SchemaObject } from 'ajv';
import type { Logger } from '../../lib/log.js';
import type { StageContract, StageName } from './contract.js';
import type { FileRecord, Manifest } from './manifest.js';
import type { ReportProgress } from './progress.js';
import type { Storage } from './storage.js';

export interface StageContext<P> {
  contract: StageContract;
  params: P;
  /** The process environment, for configuration an image provides (for example a model URI). */
  env: Record<string, string | undefined>;
  storage: Storage;
  log: Logger;
  progress: ReportProgress;
  /** A private working folder, removed when the stage ends. */
  scratch: string;
  /** Every file left here is uploaded to `{REQUEST_PREFIX}{stage}/` before the manifest. */
  outDir: string;
  /** Records a tool and its version in the manifest. */
  tool(name: string, version: string): void;
  /** Runs `work` and records its duration under `phase` in the manifest's timings. */
  timed<T>(phase: string, work: () => Promise<T>): Promise<T>;
  /**
   * Downloads a finished earlier stage's outputs into scratch and answers their folder and
   * manifest; refuses when that stage has no manifest (it never finished). `select` limits the
   * download to the output paths it accepts (the sfm model without its images, say).
   */
  readStage(stage: StageName, select?: (path: string) => boolean): Promise<{ dir: string; manifest: Manifest }>;
  /**
   * Only an earlier stage's manifest, without its files (for the facts it records); undefined
   * when that stage has not finished.
   */
  readManifest(stage: StageName): Promise<Manifest | undefined>;
  /** Downloads any URI into scratch and records it (size, sha256) among the manifest's inputs. */
  fetchInput(uri: string, localName?: string): Promise<{ path: string; record: FileRecord }>;
}

export interface StageResult<M> {
  metrics: M;
  /** Phases a stage's core timed itself (seconds), added to the manifest's timings. */
  timings?: Record<string, number>;
}

export interface StageDefinition<P, M> {
  name: StageName;
  params: JSONSchemaType<P>;
  metrics: JSONSchemaType<M>;
  run(ctx: StageContext<P>): Promise<StageResult<M>>;
}

/** A stage with its types erased, so definitions of different stages fit in one registry. */
export interface AnyStage {
  name: StageName;
  params: SchemaObject;
  metrics: SchemaObject;
  run(ctx: StageContext<unknown>): Promise<StageResult<unknown>>;
}

export function defineStage<P, M>(definition: StageDefinition<P, M>): AnyStage {
  return {
    name: definition.name,
    params: definition.params,
    metrics: definition.metrics,
    // The runner validates the parameters against `definition.params` before calling run.
    run: (ctx) => definition.run(ctx as StageContext<P>),
  };
}
