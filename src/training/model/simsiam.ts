// The whole SimSiam model on one screen (cf. facebookresearch/simsiam builder.py):
// encoder f = backbone + projector, predictor h. One tfjs LayersModel with three outputs so a
// checkpoint is one standard model.json + weights.bin.
import * as tf from '@tensorflow/tfjs';
import type { TrainConfig } from '../config';
import { resnetBackbone } from './resnet';
import { projector, predictor } from './heads';
import { deriveSeed } from '../data/rng';

export interface SimSiamOutputs {
  /** Backbone features: the representation that is evaluated (kNN, retrieval). */
  features: tf.Tensor2D;
  /** z = f(x): projector output, the stop-gradient target. */
  z: tf.Tensor2D;
  /** p = h(z): predictor output. */
  p: tf.Tensor2D;
}

export function buildSimSiam(config: TrainConfig): tf.LayersModel {
  let layerIndex = 0;
  const seeds = () => deriveSeed(config.seed, 0x5eed, layerIndex++);
  const input = tf.input({ shape: [config.imageSize, config.imageSize, 3], name: 'image' });
  const { features } = resnetBackbone(input, {
    depth: config.backbone, widthMultiplier: config.widthMultiplier, stem: config.stem, bnMomentum: config.bnMomentum, seeds,
  });
  const z = projector(features, config.projectorDim, config.projectorLayers, config.bnMomentum, seeds);
  const p = predictor(z, config.projectorDim, config.predictorHiddenDim, config.bnMomentum, seeds);
  return tf.model({ inputs: input, outputs: [features, z, p], name: 'simsiam' });
}

/** Forward pass; `training` selects batch statistics (and updates BN moving averages). */
export function forward(model: tf.LayersModel, images: tf.Tensor4D, training: boolean): SimSiamOutputs {
  const [features, z, p] = model.apply(images, { training }) as tf.Tensor2D[];
  return { features, z, p };
}
