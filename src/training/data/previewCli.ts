// `simsiam preview <folder> --out views.png`: the augmentation preview (./preview.ts) as one PNG,
// for the config `simsiam train` would resolve from the same preset and flags.
import { promises as fs } from 'fs';
import * as path from 'path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { PRESETS, resolveConfig, type PresetName, type TrainConfig } from '../config';
import { printable, printableJson } from '../printable';
import { PREVIEW_LIMITS, previewPng, renderPreview } from './preview';

/** Where the command writes: cli.ts's outputs fit. */
export interface PreviewOutputs {
  out: { line(text: string): void };
  err: { line(text: string): void };
}

const whole = (name: string, min: number, max = Number.MAX_SAFE_INTEGER) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new InvalidArgumentError(`${name} must be a whole number${max === Number.MAX_SAFE_INTEGER ? ` from ${min}` : ` from ${min} to ${max}`}.`);
  }
  return n;
};
const real = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number.`);
  return n;
};

/** The config fields that change which views the trainer renders, under train's flag names. */
const VIEW_FLAGS: { field: keyof TrainConfig; flag: string; description: string; parse: (value: string) => number }[] = [
  { field: 'imageSize', flag: '--size <px>', description: 'input image size', parse: whole('--size', 1) },
  { field: 'batchSize', flag: '--batch <n>', description: 'batch size (which batch and slot an image lands in)', parse: whole('--batch', 1) },
  { field: 'seed', flag: '--seed <n>', description: 'random seed', parse: whole('--seed', 0) },
  { field: 'cropScaleMin', flag: '--crop-min <x>', description: 'random resized crop: smallest area, as a fraction of the image (recipe 0.2)', parse: real('--crop-min') },
  { field: 'cropScaleMax', flag: '--crop-max <x>', description: 'random resized crop: largest area (recipe 1)', parse: real('--crop-max') },
  { field: 'colorJitter', flag: '--jitter <s>', description: 'colour-jitter strength s (recipe 1)', parse: real('--jitter') },
  { field: 'colorJitterP', flag: '--jitter-p <p>', description: 'probability of colour jitter (recipe 0.8)', parse: real('--jitter-p') },
  { field: 'grayscaleP', flag: '--grayscale-p <p>', description: 'probability of grayscale (recipe 0.2)', parse: real('--grayscale-p') },
  { field: 'blurP', flag: '--blur-p <p>', description: 'probability of Gaussian blur (recipe 0.5 above 64 px, else 0)', parse: real('--blur-p') },
  { field: 'flipP', flag: '--flip-p <p>', description: 'probability of a horizontal flip (recipe 0.5)', parse: real('--flip-p') },
];

/** commander's property name for a flag: --crop-min <x> → cropMin. */
const optionKey = (flag: string) => flag.split(' ')[0].slice(2).replace(/-(\w)/g, (_, c: string) => c.toUpperCase());

export function registerPreviewCommand(program: Command, io: PreviewOutputs): Command {
  const command = program.command('preview')
    .description('write a few images of the folder with pairs of views exactly as training renders them (same code, same seeds) to one PNG')
    .argument('<folder>', 'folder of images')
    .requiredOption('--out <file.png>', 'the PNG to write: a row per image, its pairs of views left to right')
    .option('--images <n>', `images shown (1 to ${PREVIEW_LIMITS.images})`, whole('--images', 1, PREVIEW_LIMITS.images), 4)
    .option('--pairs <n>', `pairs of views per image, from successive epochs (1 to ${PREVIEW_LIMITS.pairs})`, whole('--pairs', 1, PREVIEW_LIMITS.pairs), 3)
    .option('--epoch <n>', 'the first epoch whose views are shown', whole('--epoch', 0), 0)
    .addOption(new Option('--preset <name>', 'preset the flags below change').choices(Object.keys(PRESETS)).default('tiny'));
  for (const { flag, description, parse } of VIEW_FLAGS) command.option(flag, description, parse);
  return command
    .option('--runs <dir>', "runs folder that training leaves out of the scan (train's --out; default <folder>/.simsiam/runs)")
    .option('--json', 'print where each pair was rendered (epoch, batch, slot) as one JSON line')
    .action(async (folder: string, o) => {
      const overrides = Object.fromEntries(VIEW_FLAGS.map(({ field, flag }) => [field, o[optionKey(flag)]]));
      const config = resolveConfig(o.preset as PresetName, overrides);
      const out = path.resolve(o.out as string);
      if (path.extname(out).toLowerCase() !== '.png') throw new Error(`--out ${out}: the preview is a PNG; name the file *.png.`);
      const preview = await renderPreview({
        folder, config, runsDir: o.runs === undefined ? undefined : path.resolve(o.runs as string), images: o.images, pairs: o.pairs, epoch: o.epoch,
      });
      await fs.writeFile(out, await previewPng(preview));
      for (const note of preview.notes) io.err.line(`note: ${printable(note)}`);
      if (o.json) {
        io.out.line(printableJson({
          type: 'preview', file: out, size: preview.size,
          images: preview.images.map((image) => ({
            path: image.relPath, label: image.label, pairs: image.pairs.map(({ epoch, batch, slot }) => ({ epoch, batch, slot })),
          })),
        }));
        return;
      }
      io.out.line(`wrote ${printable(out)}: ${preview.images.length} images × ${o.pairs} pairs of ${preview.size} px views`);
      preview.images.forEach((image, row) => io.out.line(`  row ${row + 1}: ${printable(image.relPath)}  ` +
        image.pairs.map((p) => `epoch ${p.epoch} batch ${p.batch} slot ${p.slot}`).join(', ')));
    });
}
