// Learning-rate schedule of the official recipe: cosine decay per epoch, no warm-up (batch < 1024).
import { initialLr, type TrainConfig } from './config';

export interface LearningRates {
  /** Backbone and projector. */
  encoder: number;
  /** The predictor keeps the initial lr when fixedPredictorLr is set (paper §4.2, Table 1: 68.1 vs 67.7 %). */
  predictor: number;
}

export function cosineLr(baseLr: number, epoch: number, epochs: number): number {
  return baseLr * 0.5 * (1 + Math.cos((Math.PI * epoch) / epochs));
}

export function learningRates(config: TrainConfig, epoch: number): LearningRates {
  const init = initialLr(config);
  const encoder = cosineLr(init, epoch, config.epochs);
  return { encoder, predictor: config.fixedPredictorLr ? init : encoder };
}
