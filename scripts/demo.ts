// `npm run demo`: the main job on the shipped default. Trains the tiny preset on the bundled
// Fashion-MNIST sample for a few epochs (loss, collapse monitor and kNN accuracy per epoch), then
// asks the trained model "what looks like this?" for a few test images and scores the answers.
import * as path from 'path';
import { Command } from 'commander';
import { StopSignal, startTraining } from '../src/training/trainer';
import { humanReporter } from '../src/training/cli';
import { scanDataset } from '../src/training/data/dataset';
import { findSimilar } from '../src/training/retrieval/service';
import { resolveConfig } from '../src/training/config';
import type { EngineMessage, EpochRecord } from '../src/training/protocol';

const SAMPLE = path.join(__dirname, '..', '..', 'sample', 'fashion-mnist');
const SHOWN_QUERIES = 4;
const K = 5;

async function main(): Promise<void> {
  const options = new Command('demo')
    .option('--epochs <n>', 'epochs', (v) => Number(v), 5)
    .option('--folder <dir>', 'image folder', SAMPLE)
    .parse(process.argv)
    .opts<{ epochs: number; folder: string }>();
  const report = humanReporter(process.stdout);
  const epochs: EpochRecord[] = [];
  let initialKnn: number | null = null;
  const started = Date.now();
  const done = await startTraining(
    { folder: options.folder, config: resolveConfig('tiny', { epochs: options.epochs }), name: 'demo' },
    (m: EngineMessage) => {
      if (m.type === 'metric' && m.record.kind === 'epoch') epochs.push(m.record);
      if (m.type === 'metric' && m.record.kind === 'eval' && m.record.step === 0) initialKnn = m.record.knnTop1;
      report(m);
    },
    new StopSignal());
  const trainSeconds = (Date.now() - started) / 1000;
  const { runDir } = done;

  const dataset = await scanDataset(options.folder, { excludeDirs: [path.dirname(runDir)] });
  const quiet = () => undefined;
  const classOf = (relPath: string) => relPath.split('/').at(-2) ?? '-';
  console.log(`\nNearest neighbours (top ${K}) of test images, by cosine of the learned features:`);
  let hits = 0;
  let total = 0;
  for (const [i, record] of dataset.test.entries()) {
    const result = await findSimilar(runDir, record.path, K, quiet);
    const queryClass = dataset.classes[record.label ?? -1] ?? classOf(record.relPath);
    hits += result.neighbours.filter((n) => n.label === queryClass).length;
    total += result.neighbours.length;
    if (i % Math.ceil(dataset.test.length / SHOWN_QUERIES) === 0) {
      console.log(`\n${record.relPath} (${queryClass})`);
      for (const n of result.neighbours) console.log(`  ${n.score.toFixed(3)}  ${(n.label ?? '-').padEnd(12)} ${path.relative(options.folder, n.path)}`);
    }
  }
  const first = epochs[0];
  const last = epochs.at(-1);
  const pct = (x: number | null | undefined) => (x === null || x === undefined ? 'n/a' : `${(x * 100).toFixed(1)} %`);
  console.log(`\nSummary (${trainSeconds.toFixed(0)} s of training, ${last?.imagesPerSecond.toFixed(1)} img/s):`);
  console.log(`  loss            ${first?.meanLoss.toFixed(3)} → ${last?.meanLoss.toFixed(3)}`);
  console.log(`  z-std           ${last?.zStd.toFixed(4)} (healthy ≈ 1/√d = ${last?.zStdReference.toFixed(4)})`);
  console.log(`  kNN top-1       ${pct(initialKnn)} untrained → ${pct(last?.knnTop1)}`);
  console.log(`  precision@${K}     ${pct(hits / Math.max(1, total))} of neighbours share the query's class (chance ${pct(1 / Math.max(1, dataset.classes.length))})`);
  console.log(`  run folder      ${runDir}`);
}

main().then(() => process.exit(0), (error: Error) => {
  console.error(`error: ${error.message}`);
  process.exit(1);
});
