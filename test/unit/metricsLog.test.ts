import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { selectBackend } from '../../src/training/tfjs/backend';
import { resolveConfig } from '../../src/training/config';
import { StopSignal, resumeTraining, startTraining } from '../../src/training/trainer';
import { METRICS_FILE, readMetrics } from '../../src/training/run/runStore';
import type { MetricRecord } from '../../src/training/protocol';

const step = (s: number): MetricRecord => ({ kind: 'step', step: s, epoch: 0, loss: -0.1 * s, lr: 0.01 });

describe('metrics.jsonl', () => {
  let runDir: string;
  beforeEach(() => {
    runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-metrics-'));
  });
  afterEach(() => fs.rmSync(runDir, { recursive: true, force: true }));

  const write = (text: string) => fs.writeFileSync(path.join(runDir, METRICS_FILE), text);

  it('leaves out a last line a crash cut short', () => {
    write(`${JSON.stringify(step(1))}\n${JSON.stringify(step(2))}\n{"kind":"step","st`);
    assert.deepStrictEqual(readMetrics(runDir), [step(1), step(2)]);
  });

  it('refuses a damaged line elsewhere, naming the file, the line and the field', () => {
    write(`${JSON.stringify(step(1))}\n${JSON.stringify({ ...step(2), loss: 'low' })}\n${JSON.stringify(step(3))}\n`);
    assert.throws(() => readMetrics(runDir),
      (error: Error) => error.message.startsWith(`${path.join(runDir, METRICS_FILE)}, line 2, is not a metric record (field "loss"`));
    write(`${JSON.stringify(step(1))}\nnot json\n${JSON.stringify(step(3))}\n`);
    assert.throws(() => readMetrics(runDir), /line 2, is not a metric record \(not JSON/);
  });

  it('is never rewritten without a damaged line: a resume refuses, and the file stays as it was', async function () {
    this.timeout(120_000);
    await selectBackend('wasm');
    const folder = path.join(runDir, 'images');
    for (let i = 0; i < 16; i++) {
      const pixels = Buffer.alloc(12 * 12 * 3, (i * 37) % 256).map((v, j) => (v + j * (i + 1)) % 256);
      fs.mkdirSync(folder, { recursive: true });
      await sharp(pixels, { raw: { width: 12, height: 12, channels: 3 } }).png().toFile(path.join(folder, `${i}.png`));
    }
    const config = resolveConfig('tiny', { imageSize: 12, batchSize: 8, widthMultiplier: 0.125, projectorDim: 16, predictorHiddenDim: 4, epochs: 1 });
    const { runDir: run } = await startTraining({ folder, config }, () => undefined, new StopSignal());
    const file = path.join(run, METRICS_FILE);
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    lines.splice(1, 0, '{"kind":"step","step":"one"}');
    fs.writeFileSync(file, lines.join('\n'));
    const before = fs.readFileSync(file, 'utf8');
    await assert.rejects(resumeTraining({ runDir: run, epochs: 2 }, () => undefined, new StopSignal()), /line 2, is not a metric record/);
    assert.strictEqual(fs.readFileSync(file, 'utf8'), before);
  });
});
