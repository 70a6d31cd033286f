/**
 * Embedding throughput: embedRecords (what the kNN monitor and retrieval index run) with the tiny
 * preset at 32 px, on the same JPEG folder the training figures use, so the two rates sit side by
 * side. "from files" decodes every image each time (a retrieval index build); "cached" reuses
 * decoded pixels (the kNN monitor after its first evaluation).
 */
import { selectBackend } from '../src/training/tfjs/backend';
import { webGpuIsSoftware } from '../src/training/tfjs/webgpuBackend';
import type { UserBackendName } from '../src/training/config';
import { embedRecords } from '../src/training/embedding';
import { buildSimSiam } from '../src/training/model/simsiam';
import { DecodedImageCache } from '../src/training/data/imageDecode';
import type { ImageRecord } from '../src/training/data/dataset';
import { tinyConfig } from './train';
import { formatRate, formatSpread, rate, spreadOf, timeRepeats, type Spread } from './timing';
import type { BenchContext } from './context';

/** The plain-JS cpu backend embeds a few images only (--all). */
const CPU_IMAGES = 32;

export interface EmbedFigures {
  backend: UserBackendName;
  detail: string;
  images: number;
  fromFilesPerSecond: Spread;
  cachedPerSecond: Spread;
}

export async function benchEmbed(context: BenchContext, records: ImageRecord[]): Promise<EmbedFigures[]> {
  const config = tinyConfig('wasm');
  context.heading(`Embedding, embedRecords with the tiny preset at ${config.imageSize} px (decode + centre view + ` +
    `eval-mode forward, l2-normalised backbone features), ${records.length} JPEGs per run`);
  const figures: EmbedFigures[] = [];
  for (const backend of context.backends) {
    if (backend === 'cpu' && !context.all) {
      context.print('  cpu: skipped (--all to include it)');
      continue;
    }
    const info = await selectBackend(backend);
    const model = buildSimSiam(tinyConfig(backend));
    const slow = backend === 'cpu';
    const images = slow ? records.slice(0, CPU_IMAGES) : records;
    try {
      const embed = (cache?: DecodedImageCache) => async () => {
        const { features } = await embedRecords(model, images, config.imageSize, undefined, cache);
        // WebGPU only queues the work: reading the features waits for it.
        await features.data();
        features.dispose();
      };
      // WebGPU on a software adapter (lavapipe) is slower than wasm: one timed run after the shader-compiling one.
      const softwareGpu = backend === 'webgpu' && webGpuIsSoftware();
      const repeats = slow || softwareGpu ? 1 : context.repeats;
      const fromFiles = spreadOf(await timeRepeats(slow ? 0 : softwareGpu ? 1 : context.warmUp, repeats, embed()));
      const cache = new DecodedImageCache(images.length, config.imageSize);
      const cached = spreadOf(await timeRepeats(1, repeats, embed(cache)));
      const figure: EmbedFigures = {
        backend, detail: info.detail, images: images.length,
        fromFilesPerSecond: rate(images.length, fromFiles), cachedPerSecond: rate(images.length, cached),
      };
      context.print(`  ${info.detail}${slow ? ` (${images.length} images)` : ''}: from files ${formatRate(figure.fromFilesPerSecond.median)} images/s ` +
        `(${formatSpread(fromFiles)}), cached pixels ${formatRate(figure.cachedPerSecond.median)} images/s (${formatSpread(cached)})`);
      figures.push(figure);
    } finally {
      model.dispose();
    }
  }
  return figures;
}
