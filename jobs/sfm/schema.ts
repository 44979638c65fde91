/** The sfm stage's parameters (`SPLATFLOW_PARAMS`) and the metrics it puts in its manifest. */
import type { JSONSchemaType } from 'ajv';

export const CAMERA_MODELS = ['SIMPLE_PINHOLE', 'PINHOLE', 'SIMPLE_RADIAL', 'RADIAL', 'OPENCV'] as const;
/** COLMAP's two mappers: global (GLOMAP's, merged into COLMAP 4) and incremental. */
export const MAPPERS = ['global', 'incremental'] as const;
export type Mapper = (typeof MAPPERS)[number];

export interface SfmParams {
  input_kind: 'video' | 'images';
  matcher: 'auto' | 'sequential' | 'exhaustive';
  exhaustive_max_images: number;
  sequential_overlap: number;
  vocab_tree_path: string;
  camera_model: (typeof CAMERA_MODELS)[number];
  shared_camera: 'auto' | 'single' | 'per_image';
  mapper: 'auto' | Mapper;
  /**
   * COLMAP's incremental mapper: the least 2D-3D inliers, and inlier share, to register one more
   * image. COLMAP's defaults (30, 0.25) registered 11 of the 44 watch-orbit frames at 640 px, these
   * 39-42 with the same reprojection error (0.77 px): orbit frames of a subject on a plain wall see
   * few points each. The quality gate still judges the result.
   */
  abs_pose_min_num_inliers: number;
  abs_pose_min_inlier_ratio: number;
  /**
   * COLMAP's incremental mapper: the least triangulation angle (degrees) for a point to be made
   * and kept. COLMAP's 1.5 left a handheld clip's fast turns without points, so their frames could
   * not register (room.mp4: 86 of 104); 0.5 registered 104 of 104 at 0.64 px reprojection error.
   */
  tri_min_angle: number;
  /**
   * Global mapper: estimate the focal lengths from the pairs' fundamental matrices first (COLMAP's
   * view-graph calibrator, which its CLI guide advises where intrinsics are unsure). Measured on
   * the preview's frames: the watch clip's 43 split into four models, 17 frames in the largest,
   * against 41 of 43 in one without it; room.mp4 103 of 104 either way. So off by default.
   */
  view_graph_calibration: boolean;
  /** Global bundle adjustment iterations (COLMAP's default 50); 20 cut mapping time by a third to half on room.mp4. */
  ba_global_max_num_iterations: number;
  max_image_size: number;
  undistort_max_image_size: number;
  min_registered_share: number;
  min_points: number;
  /**
   * The policy for a model below the share gate once the ladder is spent: the largest model is
   * still trained on (and the report says `partial`) when it holds at least this share of the
   * frames; a splat of most of a room beats nothing. Set it to `min_registered_share` or above
   * to refuse anything below the gate.
   */
  partial_min_share: number;
  num_threads: number;
  /**
   * Seeds COLMAP's random generators (RANSAC, the mappers), so that a run on one thread repeats
   * exactly; with more threads the order threads finish in still varies the result a little.
   */
  random_seed: number;
}

export const sfmParamsSchema: JSONSchemaType<SfmParams> = {
  type: 'object',
  properties: {
    input_kind: {
      description:
        'What the frames came from: a video (one camera, ordered frames) or a set of photos; the sfm stage takes it from the frames manifest.',
      type: 'string',
      enum: ['video', 'images'],
      default: 'video',
    },
    matcher: {
      description: '`auto`: exhaustive matching up to `exhaustive_max_images` images, sequential above.',
      type: 'string',
      enum: ['auto', 'sequential', 'exhaustive'],
      default: 'auto',
    },
    exhaustive_max_images: {
      description: 'The most images `auto` matches exhaustively.',
      type: 'integer',
      minimum: 2,
      maximum: 1000,
      default: 50,
    },
    sequential_overlap: {
      description: 'How many following frames each frame is matched with in sequential matching.',
      type: 'integer',
      minimum: 1,
      maximum: 100,
      default: 10,
    },
    vocab_tree_path: {
      description:
        "COLMAP vocabulary tree for sequential matching's loop detection; empty: the image's `SPLATFLOW_VOCAB_TREE_PATH`, and no loop detection without either.",
      type: 'string',
      default: '',
    },
    camera_model: {
      description: 'COLMAP camera model of the sparse model.',
      type: 'string',
      enum: CAMERA_MODELS,
      default: 'SIMPLE_RADIAL',
    },
    shared_camera: {
      description: '`auto`: one shared camera for a video, one per photo for an image set.',
      type: 'string',
      enum: ['auto', 'single', 'per_image'],
      default: 'auto',
    },
    mapper: {
      description:
        "COLMAP's `global` mapper (GLOMAP's, in COLMAP 4) or its `incremental` one; `auto`: global first, and the other below the gate (docs/capture.md has the measurements).",
      type: 'string',
      enum: ['auto', ...MAPPERS],
      default: 'auto',
    },
    abs_pose_min_num_inliers: {
      description:
        "COLMAP incremental mapper: the least 2D-3D inliers to register one more image (COLMAP's default 30).",
      type: 'integer',
      minimum: 6,
      maximum: 1000,
      default: 15,
    },
    abs_pose_min_inlier_ratio: {
      description:
        "COLMAP incremental mapper: the least inlier share to register one more image (COLMAP's default 0.25).",
      type: 'number',
      exclusiveMinimum: 0,
      maximum: 1,
      default: 0.15,
    },
    tri_min_angle: {
      description:
        "COLMAP incremental mapper: the least triangulation angle, in degrees, for a point to be made and kept (COLMAP's default 1.5).",
      type: 'number',
      exclusiveMinimum: 0,
      maximum: 30,
      default: 0.5,
    },
    view_graph_calibration: {
      description:
        "Global mapper: estimate focal lengths from the pairs' fundamental matrices first (COLMAP's view-graph calibrator); on, it split the watch clip's frames into four models.",
      type: 'boolean',
      default: false,
    },
    ba_global_max_num_iterations: {
      description: "Global bundle adjustment iterations (COLMAP's default 50).",
      type: 'integer',
      minimum: 1,
      maximum: 1000,
      default: 20,
    },
    max_image_size: {
      description: 'Longest side, in pixels, that SIFT sees; larger finds more features and costs more time.',
      type: 'integer',
      minimum: 160,
      maximum: 8192,
      default: 1600,
    },
    undistort_max_image_size: {
      description: 'Longest side of the undistorted training images.',
      type: 'integer',
      minimum: 160,
      maximum: 8192,
      default: 1600,
    },
    min_registered_share: {
      description: 'Quality gate: the least share of input images that must register.',
      type: 'number',
      minimum: 0,
      maximum: 1,
      default: 0.6,
    },
    min_points: {
      description: 'Quality gate: the least number of triangulated points.',
      type: 'integer',
      minimum: 0,
      default: 100,
    },
    partial_min_share: {
      description:
        'Below the share gate, the largest model is still trained on (the report says `partial`) when it holds at least this share; set it to `min_registered_share` or above to refuse instead.',
      type: 'number',
      minimum: 0,
      maximum: 1,
      default: 0.4,
    },
    num_threads: {
      description: 'COLMAP threads; -1: all cores.',
      type: 'integer',
      minimum: -1,
      maximum: 256,
      default: -1,
    },
    random_seed: {
      description:
        "Seed of COLMAP's random generators: with `num_threads` 1 a run repeats exactly; -1: a different seed each run.",
      type: 'integer',
      minimum: -1,
      maximum: 2147483647,
      default: 0,
    },
  },
  required: [],
  additionalProperties: false,
};

/** One rung of the ladder the stage climbed (run-sfm.ts). */
export interface LadderRung {
  rung: 'planned' | 'denser' | 'other_mapper';
  /** null for a skipped rung. */
  matcher: 'sequential' | 'exhaustive' | null;
  loop_detection: boolean;
  mapper: Mapper | null;
  images: number;
  registered: number;
  points: number;
  seconds: number;
  outcome: 'passed' | 'below_gate' | 'skipped';
  /** What the rung did, or why it was skipped. */
  note: string;
}

export interface SfmMetrics {
  images_input: number;
  images_registered: number;
  registered_share: number;
  points: number;
  /** Per observation, as COLMAP's model_analyzer reports it. */
  mean_reprojection_error_px: number;
  mean_track_length: number;
  /** Disconnected models the mapper produced; the largest is kept. */
  models_found: number;
  cameras: number;
  camera_model: string;
  matcher: 'sequential' | 'exhaustive';
  loop_detection: boolean;
  /** The vocabulary tree loop detection used; null without loop detection. */
  vocab_tree: string | null;
  mapper: Mapper;
  /** Frames the denser rung added from the video (counted in images_input). */
  images_added: number;
  /** Below the share gate, continued with the largest model (partial_min_share). */
  partial: boolean;
  ladder: LadderRung[];
}

export const sfmMetricsSchema: JSONSchemaType<SfmMetrics> = {
  type: 'object',
  properties: {
    images_input: { type: 'integer', minimum: 0 },
    images_registered: { type: 'integer', minimum: 0 },
    registered_share: { type: 'number', minimum: 0, maximum: 1 },
    points: { type: 'integer', minimum: 0 },
    mean_reprojection_error_px: { type: 'number', minimum: 0 },
    mean_track_length: { type: 'number', minimum: 0 },
    models_found: { type: 'integer', minimum: 0 },
    cameras: { type: 'integer', minimum: 0 },
    camera_model: { type: 'string' },
    matcher: { type: 'string', enum: ['sequential', 'exhaustive'] },
    loop_detection: { type: 'boolean' },
    // ajv's types cannot say "required, but may be null"; the schema itself is plain JSON Schema.
    vocab_tree: { type: ['string', 'null'] } as never,
    mapper: { type: 'string', enum: MAPPERS },
    images_added: { type: 'integer', minimum: 0 },
    partial: { type: 'boolean' },
    ladder: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          rung: { type: 'string', enum: ['planned', 'denser', 'other_mapper'] },
          matcher: { type: ['string', 'null'], enum: ['sequential', 'exhaustive', null] } as never,
          loop_detection: { type: 'boolean' },
          mapper: { type: ['string', 'null'], enum: [...MAPPERS, null] } as never,
          images: { type: 'integer', minimum: 0 },
          registered: { type: 'integer', minimum: 0 },
          points: { type: 'integer', minimum: 0 },
          seconds: { type: 'number', minimum: 0 },
          outcome: { type: 'string', enum: ['passed', 'below_gate', 'skipped'] },
          note: { type: 'string' },
        },
        required: [
          'rung',
          'matcher',
          'loop_detection',
          'mapper',
          'images',
          'registered',
          'points',
          'seconds',
          'outcome',
          'note',
        ],
        additionalProperties: false,
      },
    },
  },
  required: [
    'images_input',
    'images_registered',
    'registered_share',
    'points',
    'mean_reprojection_error_px',
    'mean_track_length',
    'models_found',
    'cameras',
    'camera_model',
    'matcher',
    'loop_detection',
    'vocab_tree',
    'mapper',
    'images_added',
    'partial',
    'ladder',
  ],
  additionalProperties: false,
};
