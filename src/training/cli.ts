// `simsiam`: the headless front end of the engine, for remote machines and CI. Same trainer, same
// messages as the extension; a progress bar on a TTY, or one JSON message per line with --json.
// commander parses arguments (kept, typed, generates --help); cli-progress draws the bar.
import * as path from 'path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { BACKEND_CHOICES, PRESETS, PRESET_DESCRIPTIONS, resolveConfig, type PresetName } from './config';
import { StopSignal, startTraining, resumeTraining } from './trainer';
import type { EngineMessage, MetricRecord, StepRecord } from './protocol';
import { embedRun, findSimilar, findDuplicates, exportEmbeddings } from './retrieval/service';

const int = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a whole number.`);
  return n;
};
const num = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number.`);
  return n;
};

const percent = (x: number | null) => (x === null ? 'n/a' : `${(x * 100).toFixed(1)} %`);

/** Renders engine messages for a person: a bar per epoch on a TTY, plain lines elsewhere. */
export function humanReporter(stream: NodeJS.WriteStream = process.stderr): (m: EngineMessage) => void {
  const tty = Boolean(stream.isTTY);
  let bar: SingleBar | null = null;
  let epochs = 0;
  let batchesPerEpoch = 1;
  const log = (line: string) => {
    if (bar) bar.stop();
    bar = null;
    stream.write(line + '\n');
  };
  const showStep = (r: StepRecord) => {
    if (!tty) return;
    const batch = r.step - r.epoch * batchesPerEpoch;
    if (!bar) {
      bar = new SingleBar({
        format: `epoch ${r.epoch + 1}/${epochs} |{bar}| {value}/{total} loss {loss} · eta {eta_formatted}`,
        stream, hideCursor: true, clearOnComplete: true,
      }, Presets.shades_classic);
      bar.start(batchesPerEpoch, batch - 1, { loss: '…' });
    }
    bar.update(batch, { loss: r.loss.toFixed(4) });
  };
  const showRecord = (r: MetricRecord) => {
    switch (r.kind) {
      case 'step':
        showStep(r);
        break;
      case 'eval':
        log(`kNN top-1 at step ${r.step}${r.step === 0 ? ' (before training)' : ''}: ${percent(r.knnTop1)}`);
        break;
      case 'epoch':
        log(`epoch ${r.epoch}/${epochs}  loss ${r.meanLoss.toFixed(4)}  z-std ${r.zStd.toFixed(4)} (1/√d ${r.zStdReference.toFixed(4)})` +
          `  kNN ${percent(r.knnTop1)}  ${r.imagesPerSecond.toFixed(1)} img/s  ${r.seconds.toFixed(1)} s`);
        break;
    }
  };
  return (m) => {
    switch (m.type) {
      case 'started':
        epochs = m.config.epochs;
        batchesPerEpoch = m.batchesPerEpoch;
        log(`run ${m.runDir}\nbackend ${m.backend} · ${m.dataset.trainImages} train / ${m.dataset.testImages} test images` +
          (m.dataset.classes.length ? ` · ${m.dataset.classes.length} classes` : '') +
          ` · ${m.batchesPerEpoch} steps per epoch` + (m.startStep ? ` · resuming at step ${m.startStep}` : ''));
        break;
      case 'metric':
        showRecord(m.record);
        break;
      case 'warning':
        log(`warning: ${m.message}`);
        break;
      case 'checkpoint':
      case 'similarResult':
      case 'embedResult':
        break;
      case 'progress':
        if (tty) stream.write(`\r${m.task} ${m.done}/${m.total}${m.done >= m.total ? '\n' : ''}`);
        break;
      case 'done':
        log(`${m.status} at step ${m.step} (epoch ${m.epoch}): ${m.runDir}`);
        break;
      case 'error':
        log(`error: ${m.message}`);
        break;
    }
  };
}

function reporter(json: boolean): (m: EngineMessage) => void {
  return json ? (m) => process.stdout.write(JSON.stringify(m) + '\n') : humanReporter();
}

/** First Ctrl-C stops after the current step with a checkpoint; a second one exits at once. */
function stopOnInterrupt(): StopSignal {
  const stop = new StopSignal();
  let interrupts = 0;
  const onSignal = () => {
    if (++interrupts > 1) process.exit(130);
    process.stderr.write('\nstopping after this step (Ctrl-C again to quit now)…\n');
    stop.request();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return stop;
}

export function buildProgram(): Command {
  const program = new Command('simsiam')
    .description('Self-supervised SimSiam training and image retrieval on a folder of images.')
    .showHelpAfterError();

  program.command('train')
    .description('train SimSiam on a folder of images (class subfolders and train/ test/ splits are used for monitoring only)')
    .argument('<folder>', 'folder of images')
    .addOption(new Option('--preset <name>', Object.entries(PRESET_DESCRIPTIONS).map(([k, v]) => `${k}: ${v}`).join('; '))
      .choices(Object.keys(PRESETS)).default('tiny'))
    .option('--epochs <n>', 'epochs', int('--epochs'))
    .option('--batch <n>', 'batch size', int('--batch'))
    .option('--size <px>', 'input image size', int('--size'))
    .option('--lr <x>', 'base learning rate (lr = base × batch / 256)', num('--lr'))
    .addOption(new Option('--backend <name>', 'tfjs backend').choices(['auto', ...BACKEND_CHOICES]).default('auto'))
    .option('--seed <n>', 'random seed', int('--seed'))
    .option('--threads <n>', 'data-parallel training threads on the wasm/cpu backends (0 = one per core)', int('--threads'))
    .option('--loader-threads <n>', 'threads decoding and augmenting images (0 = 1 on wasm/cpu, one per core but one on tfjs-node)', int('--loader-threads'))
    .option('--crop-min <x>', 'random resized crop: smallest area, as a fraction of the image (recipe 0.2)', num('--crop-min'))
    .option('--crop-max <x>', 'random resized crop: largest area (recipe 1)', num('--crop-max'))
    .option('--jitter <s>', 'colour-jitter strength s: brightness/contrast/saturation 0.4·s, hue 0.1·s (recipe 1)', num('--jitter'))
    .option('--jitter-p <p>', 'probability of colour jitter (recipe 0.8)', num('--jitter-p'))
    .option('--grayscale-p <p>', 'probability of grayscale (recipe 0.2)', num('--grayscale-p'))
    .option('--blur-p <p>', 'probability of Gaussian blur (recipe 0.5 above 64 px, else 0)', num('--blur-p'))
    .option('--flip-p <p>', 'probability of a horizontal flip (recipe 0.5)', num('--flip-p'))
    .option('--out <dir>', 'folder for run folders (default <folder>/.simsiam/runs)')
    .option('--name <name>', 'run name')
    .option('--json', 'print one protocol message per line on stdout')
    .action(async (folder: string, o) => {
      const config = resolveConfig(o.preset as PresetName, {
        epochs: o.epochs, batchSize: o.batch, imageSize: o.size, baseLr: o.lr, backend: o.backend, seed: o.seed, replicas: o.threads,
        loaderThreads: o.loaderThreads, cropScaleMin: o.cropMin, cropScaleMax: o.cropMax, colorJitter: o.jitter,
        colorJitterP: o.jitterP, grayscaleP: o.grayscaleP, blurP: o.blurP, flipP: o.flipP,
      });
      await startTraining({ folder, config, runsDir: o.out, name: o.name }, reporter(o.json), stopOnInterrupt());
    });

  program.command('resume')
    .description('continue a stopped or interrupted run from its last checkpoint')
    .argument('<run>', 'run folder')
    .option('--epochs <n>', 'raise the total number of epochs', int('--epochs'))
    .option('--json', 'print one protocol message per line on stdout')
    .action(async (run: string, o) => {
      await resumeTraining({ runDir: run, epochs: o.epochs }, reporter(o.json), stopOnInterrupt());
    });

  program.command('embed')
    .description("embed every image of the run's dataset with its latest checkpoint (incremental)")
    .argument('<run>', 'run folder')
    .option('--json', 'print one protocol message per line on stdout')
    .action(async (run: string, o) => {
      const result = await embedRun(path.resolve(run), reporter(o.json));
      if (!o.json) console.log(`${result.images} images indexed (${result.reembedded} embedded now)`);
    });

  program.command('similar')
    .description('nearest neighbours of an image, in the dataset or outside it')
    .argument('<run>', 'run folder')
    .argument('<image>', 'query image')
    .option('-k <n>', 'neighbours', int('-k'), 10)
    .option('--json', 'print the result as JSON')
    .action(async (run: string, image: string, o) => {
      const result = await findSimilar(path.resolve(run), path.resolve(image), o.k, o.json ? () => undefined : humanReporter());
      if (o.json) {
        console.log(JSON.stringify(result));
        return;
      }
      console.log(`neighbours of ${result.query}:`);
      result.neighbours.forEach((n, i) => console.log(`${String(i + 1).padStart(3)}. ${n.score.toFixed(4)}  ${n.label ?? '-'}  ${n.path}`));
    });

  program.command('duplicates')
    .description('groups of near-duplicate images, largest first')
    .argument('<run>', 'run folder')
    .option('--threshold <x>', 'cosine similarity above which images are duplicates', num('--threshold'), 0.95)
    .option('--json', 'print the groups as JSON')
    .action(async (run: string, o) => {
      const groups = await findDuplicates(path.resolve(run), o.threshold, o.json ? () => undefined : humanReporter());
      if (o.json) {
        console.log(JSON.stringify(groups));
        return;
      }
      if (!groups.length) console.log(`no near-duplicates above ${o.threshold}`);
      groups.forEach((g, i) => console.log(`group ${i + 1} (${g.paths.length} images, min similarity ${g.minScore.toFixed(4)}):\n  ${g.paths.join('\n  ')}`));
    });

  program.command('export')
    .description('write the embeddings for use in Python: .npy (+ paths file) or CSV')
    .argument('<run>', 'run folder')
    .addOption(new Option('--format <format>', 'output format').choices(['npy', 'csv']).default('npy'))
    .option('--out <file>', 'output file (default inside the run folder)')
    .action(async (run: string, o) => {
      const files = await exportEmbeddings(path.resolve(run), o.format, o.out, humanReporter());
      console.log(`wrote ${files.join(', ')}`);
    });

  return program;
}

