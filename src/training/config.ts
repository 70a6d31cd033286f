// Training configuration: the presets of docs/RECIPE.md plus validated overrides, augmentation
// included. The resolved config is written into every run folder, so a run can be resumed and
// compared without knowing which preset, flags or settings produced it. Resolved once, by
// whoever starts a run (the CLI from its flags, the extension from its settings); everyone else
// checks it with `configProblems` and passes it on typed.

export type BackboneName = 'resnet18' | 'resnet34' | 'resnet50';
export type StemKind = 'cifar' | 'imagenet';
/** tfjs backends a person chooses from (CLI --backend, extension setting), in the order 'auto' tries them. */
export const BACKEND_CHOICES = ['node-gpu', 'node', 'webgpu', 'wasm', 'cpu'] as const;
export type UserBackendName = (typeof BACKEND_CHOICES)[number];
export type BackendRequest = 'auto' | UserBackendName;
export type PresetName = 'tiny' | 'cifar' | 'imagenet';

export interface TrainConfig {
  preset: PresetName;
  backbone: BackboneName;
  /** Multiplies every ResNet stage width (64,128,256,512); 16/64 = 0.25 for the tiny preset. */
  widthMultiplier: number;
  stem: StemKind;
  imageSize: number;
  projectorDim: number;
  /** Projector layers: 3 for ImageNet, 2 for the CIFAR variant (paper §B). */
  projectorLayers: number;
  predictorHiddenDim: number;
  batchSize: number;
  epochs: number;
  /** lr = baseLr × batchSize / 256 (paper's linear scaling rule). */
  baseLr: number;
  momentum: number;
  weightDecay: number;
  /** The predictor keeps the initial lr while the rest follows the cosine schedule (paper §4.2, Table 1). */
  fixedPredictorLr: boolean;
  /** Keras/tfjs convention: new = momentum × old + (1 − momentum) × batch; 0.9 ≡ PyTorch's 0.1. */
  bnMomentum: number;
  seed: number;
  backend: BackendRequest;
  maxCachedImages: number;
  /**
   * Shards each batch over this many threads on the single-threaded backends (wasm, cpu);
   * 0 = one per core (at most 4). See dataParallel.ts.
   */
  replicas: number;
  /**
   * Images per forward and backward pass on one training thread: a thread's share of the batch is
   * split into micro-batches of at most this many, whose gradients add up to the batch's (batch-norm
   * statistics per micro-batch, like the official recipe's per-GPU batch norm). 0 = the whole share,
   * or on wasm the largest that fits the thread's heap (measured before training).
   */
  microBatch: number;
  /** Threads decoding and augmenting images; 0 = chosen for the backend (see loaderThreadCount). */
  loaderThreads: number;
  /** Fraction of 1/√d under which the collapse monitor warns. */
  collapseWarnFraction: number;
  knnK: number;
  knnTemperature: number;
  /** Held-out fraction for the kNN monitor when the folder has no train/ and test/ splits. */
  testFraction: number;

  // The two views' augmentation (official code's MoCo v2 pipeline; docs/RECIPE.md).
  /** Random resized crop: smallest and largest crop area as a fraction of the image. */
  cropScaleMin: number;
  cropScaleMax: number;
  /** Colour-jitter strength s: brightness, contrast, saturation 0.4·s and hue 0.1·s. */
  colorJitter: number;
  /** Probability that a view is colour-jittered. */
  colorJitterP: number;
  grayscaleP: number;
  /** Gaussian blur probability; by default 0.5 above 64 px and 0 at or below (the CIFAR setting). */
  blurP: number;
  /** Horizontal flip probability. */
  flipP: number;
}

/** The augmentation fields of TrainConfig: what a comparison or a sweep varies. */
export const AUGMENTATION_FIELDS = ['cropScaleMin', 'cropScaleMax', 'colorJitter', 'colorJitterP', 'grayscaleP', 'blurP', 'flipP'] as const;
export type AugmentationSettings = Pick<TrainConfig, (typeof AUGMENTATION_FIELDS)[number] | 'imageSize'>;

/** The recipe's augmentation, blur aside (it depends on the image size: defaultBlurP). */
export const DEFAULT_AUGMENTATION = {
  cropScaleMin: 0.2,
  cropScaleMax: 1,
  colorJitter: 1,
  colorJitterP: 0.8,
  grayscaleP: 0.2,
  flipP: 0.5,
} as const;

/** Blur helps at ImageNet sizes and is dropped for small images (the paper's CIFAR setting). */
export function defaultBlurP(imageSize: number): number {
  return imageSize <= 64 ? 0 : 0.5;
}

const common = {
  momentum: 0.9,
  fixedPredictorLr: true,
  bnMomentum: 0.9,
  seed: 0,
  backend: 'auto' as BackendRequest,
  maxCachedImages: 50_000,
  replicas: 0,
  microBatch: 0,
  loaderThreads: 0,
  collapseWarnFraction: 0.5,
  knnK: 200,
  knnTemperature: 0.1,
  testFraction: 0.1,
  ...DEFAULT_AUGMENTATION,
};

export const PRESETS: Record<PresetName, TrainConfig> = {
  tiny: {
    ...common, preset: 'tiny', backbone: 'resnet18', widthMultiplier: 0.25, stem: 'cifar', imageSize: 32,
    projectorDim: 512, projectorLayers: 2, predictorHiddenDim: 128, batchSize: 64, epochs: 5,
    baseLr: 0.06, weightDecay: 5e-4, blurP: defaultBlurP(32),
  },
  cifar: {
    ...common, preset: 'cifar', backbone: 'resnet18', widthMultiplier: 1, stem: 'cifar', imageSize: 32,
    projectorDim: 2048, projectorLayers: 2, predictorHiddenDim: 512, batchSize: 512, epochs: 800,
    baseLr: 0.03, weightDecay: 5e-4, blurP: defaultBlurP(32),
  },
  imagenet: {
    ...common, preset: 'imagenet', backbone: 'resnet50', widthMultiplier: 1, stem: 'imagenet', imageSize: 224,
    projectorDim: 2048, projectorLayers: 3, predictorHiddenDim: 512, batchSize: 256, epochs: 100,
    baseLr: 0.05, weightDecay: 1e-4, blurP: defaultBlurP(224),
    // Decoded 224 px training images are cached at ~500 px (≈0.75 MB each): bound the cache to ~1.5 GB.
    maxCachedImages: 2_000,
  },
};

export const PRESET_DESCRIPTIONS: Record<PresetName, string> = {
  tiny: 'ResNet-18 ×0.25, 32 px, batch 64: trains on a laptop CPU in minutes',
  cifar: 'ResNet-18, 32 px, 2048/512 heads, batch 512: the paper\'s CIFAR recipe (GPU)',
  imagenet: 'ResNet-50, 224 px, 2048/512 heads, batch 256: the paper\'s ImageNet recipe (GPU)',
};

type Check = (value: unknown) => string | undefined;
const positiveInt: Check = (v) => (Number.isInteger(v) && (v as number) > 0 ? undefined : 'a positive integer');
const nonNegativeInt: Check = (v) => (Number.isInteger(v) && (v as number) >= 0 ? undefined : 'an integer ≥ 0');
const intUpTo = (max: number): Check => (v) => (Number.isInteger(v) && (v as number) >= 0 && (v as number) <= max ? undefined : `an integer in [0, ${max}]`);
/** Each thread holds its own backend, model copy or image cache: more than this only exhausts memory. */
const MAX_THREADS = 64;
/** The RNG's state is 32 bits: larger seeds would wrap onto smaller ones and repeat their runs. */
const MAX_SEED = 2 ** 32 - 1;
const positive: Check = (v) => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? undefined : 'a positive number');
const nonNegative: Check = (v) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? undefined : 'a number ≥ 0');
const fraction: Check = (v) => (typeof v === 'number' && v >= 0 && v < 1 ? undefined : 'a number in [0, 1)');
const probability: Check = (v) => (typeof v === 'number' && v >= 0 && v <= 1 ? undefined : 'a probability in [0, 1]');
const areaFraction: Check = (v) => (typeof v === 'number' && v > 0 && v <= 1 ? undefined : 'a fraction of the image area in (0, 1]');
const oneOf = (...allowed: string[]): Check => (v) =>
  allowed.includes(v as string) ? undefined : `one of ${allowed.join(', ')}`;
const boolean: Check = (v) => (typeof v === 'boolean' ? undefined : 'true or false');

const FIELD_CHECKS: Record<keyof TrainConfig, Check> = {
  preset: oneOf('tiny', 'cifar', 'imagenet'),
  backbone: oneOf('resnet18', 'resnet34', 'resnet50'),
  widthMultiplier: positive,
  stem: oneOf('cifar', 'imagenet'),
  imageSize: (v) => positiveInt(v) ?? ((v as number) >= 8 ? undefined : 'at least 8'),
  projectorDim: positiveInt,
  projectorLayers: (v) => (v === 2 || v === 3 ? undefined : '2 or 3'),
  predictorHiddenDim: positiveInt,
  batchSize: (v) => positiveInt(v) ?? ((v as number) >= 2 ? undefined : 'at least 2 (batch norm needs a batch)'),
  epochs: positiveInt,
  baseLr: positive,
  momentum: fraction,
  weightDecay: nonNegative,
  fixedPredictorLr: boolean,
  bnMomentum: fraction,
  seed: intUpTo(MAX_SEED),
  backend: oneOf('auto', ...BACKEND_CHOICES),
  maxCachedImages: nonNegativeInt,
  replicas: intUpTo(MAX_THREADS),
  microBatch: (v) => nonNegativeInt(v) ?? (v !== 1 ? undefined : '0 (automatic) or at least 2 (batch norm needs two images)'),
  loaderThreads: intUpTo(MAX_THREADS),
  collapseWarnFraction: fraction,
  knnK: positiveInt,
  knnTemperature: positive,
  testFraction: fraction,
  cropScaleMin: areaFraction,
  cropScaleMax: areaFraction,
  // torchvision caps the hue shift at 0.5: 0.1·s ≤ 0.5.
  colorJitter: (v) => (typeof v === 'number' && v >= 0 && v <= 5 ? undefined : 'a strength in [0, 5]'),
  colorJitterP: probability,
  grayscaleP: probability,
  blurP: probability,
  flipP: probability,
};

/** One thing wrong with a config: the field at fault (so each front end can name its flag or setting) and why. */
export interface ConfigProblem { field: string; text: string }

/** A config that breaks the rules; `problems` say which fields. */
export class ConfigError extends Error {
  constructor(message: string, readonly problems: ConfigProblem[]) {
    super(message);
  }
}

const isField = (key: string): key is keyof TrainConfig => Object.hasOwn(FIELD_CHECKS, key);

/** Rules between fields, checked once every field is valid on its own. */
function crossFieldProblems(config: TrainConfig): ConfigProblem[] {
  return config.cropScaleMin <= config.cropScaleMax
    ? []
    : [{ field: 'cropScaleMin', text: `cropScaleMin (${config.cropScaleMin}) must not exceed cropScaleMax (${config.cropScaleMax})` }];
}

/** Every problem of a would-be TrainConfig, as "field must be …" phrases; empty when it is valid. */
export function configProblems(value: unknown): ConfigProblem[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return [{ field: '', text: 'the config must be an object' }];
  const config = value as Record<string, unknown>;
  const problems = (Object.keys(FIELD_CHECKS) as (keyof TrainConfig)[]).flatMap((key) => {
    const problem = FIELD_CHECKS[key](config[key]);
    return problem ? [{ field: key, text: `${key} must be ${problem} (got ${JSON.stringify(config[key])})` }] : [];
  });
  const unknown = Object.keys(config).filter((key) => !isField(key)).map((key) => ({ field: key, text: `unknown field "${key}"` }));
  return problems.length || unknown.length ? [...problems, ...unknown] : crossFieldProblems(config as unknown as TrainConfig);
}

/** The config itself when it is valid; otherwise a ConfigError listing every problem, prefixed by `where`. */
export function checkConfig(value: unknown, where = 'Invalid training config'): TrainConfig {
  const problems = configProblems(value);
  if (problems.length) throw new ConfigError(`${where}: ${problems.map((p) => p.text).join('; ')}.`, problems);
  return value as TrainConfig;
}

/** Preset defaults overlaid with the given fields; every field is checked, unknown ones are refused. */
export function resolveConfig(preset: PresetName, overrides: Partial<Record<string, unknown>> = {}): TrainConfig {
  if (!Object.hasOwn(PRESETS, preset)) {
    throw new Error(`Unknown preset "${preset}": use one of ${Object.keys(PRESETS).join(', ')}.`);
  }
  const config: Record<string, unknown> = { ...PRESETS[preset] };
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) continue;
    if (!isField(key)) throw new ConfigError(`Unknown config field "${key}".`, [{ field: key, text: `unknown field "${key}"` }]);
    config[key] = value;
  }
  config.preset = preset;
  // Blur follows the image size unless it was set.
  if (overrides.blurP === undefined && typeof config.imageSize === 'number') config.blurP = defaultBlurP(config.imageSize);
  return checkConfig(config);
}

/**
 * A config read back from a run folder. Runs written before the augmentation was part of the
 * config trained with the defaults of their image size, and those before micro-batches with whole
 * shards (microBatch 0): those fields are filled in, the rest is
 * checked as strictly as a new run's.
 */
export function storedConfig(value: unknown, file: string): TrainConfig {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return checkConfig(value, `${file}: its config is invalid`);
  const stored = value as Record<string, unknown>;
  const size = typeof stored.imageSize === 'number' ? stored.imageSize : 0;
  return checkConfig({ ...DEFAULT_AUGMENTATION, blurP: defaultBlurP(size), microBatch: 0, ...stored }, `${file}: its config is invalid (edit or delete the run folder)`);
}

/** The paper's linear scaling rule. */
export function initialLr(config: TrainConfig): number {
  return (config.baseLr * config.batchSize) / 256;
}
