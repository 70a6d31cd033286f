// Training configuration: presets from shared/SIMSIAM.md plus validated overrides.
// The resolved config is written into every run folder, so a run can be resumed and compared
// without knowing which preset or flags produced it.

export type BackboneName = 'resnet18' | 'resnet34' | 'resnet50';
export type StemKind = 'cifar' | 'imagenet';
export type BackendRequest = 'auto' | 'node-gpu' | 'node' | 'wasm' | 'cpu';
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
  /** The predictor keeps the initial lr while the rest follows the cosine schedule (paper §4.3). */
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
  /** Threads decoding and augmenting images; 0 = chosen for the backend (see loaderThreadCount). */
  loaderThreads: number;
  /** Fraction of 1/√d under which the collapse monitor warns. */
  collapseWarnFraction: number;
  knnK: number;
  knnTemperature: number;
  /** Held-out fraction for the kNN monitor when the folder has no train/ and test/ splits. */
  testFraction: number;
}

const common = {
  momentum: 0.9,
  fixedPredictorLr: true,
  bnMomentum: 0.9,
  seed: 0,
  backend: 'auto' as BackendRequest,
  maxCachedImages: 50_000,
  replicas: 0,
  loaderThreads: 0,
  collapseWarnFraction: 0.5,
  knnK: 200,
  knnTemperature: 0.1,
  testFraction: 0.1,
};

export const PRESETS: Record<PresetName, TrainConfig> = {
  tiny: {
    ...common, preset: 'tiny', backbone: 'resnet18', widthMultiplier: 0.25, stem: 'cifar', imageSize: 32,
    projectorDim: 512, projectorLayers: 2, predictorHiddenDim: 128, batchSize: 64, epochs: 5,
    baseLr: 0.06, weightDecay: 5e-4,
  },
  cifar: {
    ...common, preset: 'cifar', backbone: 'resnet18', widthMultiplier: 1, stem: 'cifar', imageSize: 32,
    projectorDim: 2048, projectorLayers: 2, predictorHiddenDim: 512, batchSize: 512, epochs: 800,
    baseLr: 0.03, weightDecay: 5e-4,
  },
  imagenet: {
    ...common, preset: 'imagenet', backbone: 'resnet50', widthMultiplier: 1, stem: 'imagenet', imageSize: 224,
    projectorDim: 2048, projectorLayers: 3, predictorHiddenDim: 512, batchSize: 256, epochs: 100,
    baseLr: 0.05, weightDecay: 1e-4,
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
const positive: Check = (v) => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? undefined : 'a positive number');
const nonNegative: Check = (v) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? undefined : 'a number ≥ 0');
const fraction: Check = (v) => (typeof v === 'number' && v >= 0 && v < 1 ? undefined : 'a number in [0, 1)');
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
  seed: nonNegativeInt,
  backend: oneOf('auto', 'node-gpu', 'node', 'wasm', 'cpu'),
  maxCachedImages: nonNegativeInt,
  replicas: nonNegativeInt,
  loaderThreads: nonNegativeInt,
  collapseWarnFraction: fraction,
  knnK: positiveInt,
  knnTemperature: positive,
  testFraction: fraction,
};

/** Preset defaults overlaid with the given fields; every field is checked, unknown ones are refused. */
export function resolveConfig(preset: PresetName, overrides: Partial<Record<string, unknown>> = {}): TrainConfig {
  if (!(preset in PRESETS)) {
    throw new Error(`Unknown preset "${preset}": use one of ${Object.keys(PRESETS).join(', ')}.`);
  }
  const config: Record<string, unknown> = { ...PRESETS[preset] };
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) continue;
    if (!(key in FIELD_CHECKS)) throw new Error(`Unknown config field "${key}".`);
    config[key] = value;
  }
  config.preset = preset;
  const problems = (Object.keys(FIELD_CHECKS) as (keyof TrainConfig)[])
    .map((key) => {
      const problem = FIELD_CHECKS[key](config[key]);
      return problem && `${key} must be ${problem} (got ${JSON.stringify(config[key])})`;
    })
    .filter((p): p is string => Boolean(p));
  if (problems.length) throw new Error(`Invalid training config: ${problems.join('; ')}.`);
  return config as unknown as TrainConfig;
}

/** The paper's linear scaling rule. */
export function initialLr(config: TrainConfig): number {
  return (config.baseLr * config.batchSize) / 256;
}
