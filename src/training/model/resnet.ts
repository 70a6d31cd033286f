// ResNet backbones (He et al. 2016) as tfjs layers, in the torchvision layout SimSiam uses:
// basic blocks for resnet18/34, bottlenecks for resnet50, a width multiplier, and the two stems
// of docs/RECIPE.md. The output is the global-average-pooled feature vector (no classifier).
import * as tf from '@tensorflow/tfjs';
import type { BackboneName, StemKind } from '../config';
import { batchNormalization } from './batchNorm';

/** Hands out a fresh initializer seed per layer, so the same config seed builds the same model. */
export type SeedSource = () => number;

export interface BackboneOptions {
  depth: BackboneName;
  widthMultiplier: number;
  stem: StemKind;
  bnMomentum: number;
  seeds: SeedSource;
}

const STAGES: Record<BackboneName, { blocks: number[]; bottleneck: boolean }> = {
  resnet18: { blocks: [2, 2, 2, 2], bottleneck: false },
  resnet34: { blocks: [3, 4, 6, 3], bottleneck: false },
  resnet50: { blocks: [3, 4, 6, 3], bottleneck: true },
};
const BOTTLENECK_EXPANSION = 4;

/** PyTorch's BN epsilon; tfjs defaults to 1e-3. */
export const BN_EPSILON = 1e-5;

type Node = tf.SymbolicTensor;

class ResNetBuilder {
  constructor(private readonly options: BackboneOptions) {}

  conv(x: Node, filters: number, kernel: number, stride: number, name: string): Node {
    return tf.layers.conv2d({
      filters, kernelSize: kernel, strides: stride, padding: 'same', useBias: false, name,
      // torchvision initialises ResNet convs with kaiming_normal(mode='fan_out').
      kernelInitializer: tf.initializers.varianceScaling({
        scale: 2, mode: 'fanOut', distribution: 'normal', seed: this.options.seeds(),
      }),
    }).apply(x) as Node;
  }

  bn(x: Node, name: string, zeroGamma = false): Node {
    return batchNormalization({
      momentum: this.options.bnMomentum, epsilon: BN_EPSILON, name,
      // Zero-init the last BN of each residual branch: every block starts as identity (Goyal et al.).
      gammaInitializer: zeroGamma ? 'zeros' : 'ones',
    }).apply(x) as Node;
  }

  relu(x: Node, name: string): Node {
    return tf.layers.reLU({ name }).apply(x) as Node;
  }

  residual(branch: Node, x: Node, inChannels: number, outChannels: number, stride: number, name: string): Node {
    const identity = stride === 1 && inChannels === outChannels
      ? x
      : this.bn(this.conv(x, outChannels, 1, stride, `${name}_down_conv`), `${name}_down_bn`);
    return this.relu(tf.layers.add({ name: `${name}_add` }).apply([branch, identity]) as Node, `${name}_out`);
  }

  basicBlock(x: Node, inChannels: number, width: number, stride: number, name: string): Node {
    let y = this.relu(this.bn(this.conv(x, width, 3, stride, `${name}_conv1`), `${name}_bn1`), `${name}_relu1`);
    y = this.bn(this.conv(y, width, 3, 1, `${name}_conv2`), `${name}_bn2`, true);
    return this.residual(y, x, inChannels, width, stride, name);
  }

  bottleneckBlock(x: Node, inChannels: number, width: number, stride: number, name: string): Node {
    const outChannels = width * BOTTLENECK_EXPANSION;
    let y = this.relu(this.bn(this.conv(x, width, 1, 1, `${name}_conv1`), `${name}_bn1`), `${name}_relu1`);
    // Stride on the 3×3 conv (torchvision's "ResNet v1.5"), as in the official SimSiam backbone.
    y = this.relu(this.bn(this.conv(y, width, 3, stride, `${name}_conv2`), `${name}_bn2`), `${name}_relu2`);
    y = this.bn(this.conv(y, outChannels, 1, 1, `${name}_conv3`), `${name}_bn3`, true);
    return this.residual(y, x, inChannels, outChannels, stride, name);
  }

  build(input: Node): { features: Node; dim: number } {
    const { blocks, bottleneck } = STAGES[this.options.depth];
    const scaled = (c: number) => Math.max(1, Math.round(c * this.options.widthMultiplier));
    const stemWidth = scaled(64);

    let x: Node;
    if (this.options.stem === 'cifar') {
      // CIFAR variant: 3×3 stride-1 conv and no max-pool keep 32 px inputs from shrinking too early.
      x = this.relu(this.bn(this.conv(input, stemWidth, 3, 1, 'stem_conv'), 'stem_bn'), 'stem_relu');
    } else {
      x = this.relu(this.bn(this.conv(input, stemWidth, 7, 2, 'stem_conv'), 'stem_bn'), 'stem_relu');
      x = tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same', name: 'stem_pool' }).apply(x) as Node;
    }

    let channels = stemWidth;
    blocks.forEach((count, stage) => {
      const width = scaled(64 * 2 ** stage);
      for (let i = 0; i < count; i++) {
        const stride = stage > 0 && i === 0 ? 2 : 1;
        const name = `layer${stage + 1}_${i}`;
        x = bottleneck
          ? this.bottleneckBlock(x, channels, width, stride, name)
          : this.basicBlock(x, channels, width, stride, name);
        channels = bottleneck ? width * BOTTLENECK_EXPANSION : width;
      }
    });
    const features = tf.layers.globalAveragePooling2d({ name: 'avgpool' }).apply(x) as Node;
    return { features, dim: channels };
  }
}

/** Applies the backbone to `input`; returns the pooled features and their dimension. */
export function resnetBackbone(input: Node, options: BackboneOptions): { features: Node; dim: number } {
  return new ResNetBuilder(options).build(input);
}
