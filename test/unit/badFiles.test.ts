// Issue 6, bad files: a dataset holding every kind of file a real folder accumulates (broken,
// mislabelled, exotic, hostile) must train and embed. Each decodable oddity is used; each file that
// cannot be used is skipped with exactly one warning that names it and says why; nothing crashes.
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFileSync, fork } from 'child_process';
import sharp from 'sharp';
import { selectBackend } from '../../src/training/tfjs/backend';
import { StopSignal, startTraining } from '../../src/training/trainer';
import { readMetrics } from '../../src/training/run/runStore';
import { resolveConfig } from '../../src/training/config';
import { loadIndex } from '../../src/training/retrieval/embeddingIndex';
import { embedRun, findSimilar } from '../../src/training/retrieval/service';
import { message, type MetricRecord, type DoneMessage, type EngineMessage, type WarningMessage } from '../../src/training/protocol';
import { Rng } from '../../src/training/data/rng';
import { pngClaiming } from './craftedImages';

/** A model small enough to step in milliseconds, with every component of the real one. */
const SMALL = { imageSize: 16, batchSize: 8, widthMultiplier: 0.125, projectorDim: 32, predictorHiddenDim: 8, epochs: 1, backend: 'wasm' };

const ENGINE_PROCESS = path.join(__dirname, '..', '..', 'src', 'training', 'engineProcess.js');

/** Random smooth colours plus noise: no two images alike, so batch norm sees real variance. */
function noisyPixels(seed: number, width: number, height: number, channels: number): Buffer {
  const rng = new Rng(seed);
  const base = Array.from({ length: channels }, () => rng.uniform(0, 255));
  const pixels = Buffer.alloc(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < channels; c++) {
        pixels[(y * width + x) * channels + c] = (base[c] + (x * 97 + y * 31 * (c + 1)) / 8 + rng.uniform(0, 60)) % 256;
      }
    }
  }
  return pixels;
}

const rgb = (seed: number, width = 24, height = 20) => sharp(noisyPixels(seed, width, height, 3), { raw: { width, height, channels: 3 } });


interface Case {
  /** Path relative to the dataset root. */
  relPath: string;
  make: () => Promise<Buffer>;
  /** Why it is skipped (matched against the warning), or null when it must be trained on and embedded. */
  skippedBecause: RegExp | null;
}

const half = (bytes: Buffer) => bytes.subarray(0, Math.floor(bytes.length / 2));
/**
 * libvips names the truncation ("premature end of JPEG image", "end of stream") when a file is
 * decoded alone; with decodes running in parallel its shared error buffer can lose that text, and
 * imageDecode then says "damaged or truncated".
 */
const TRUNCATED = /premature end|end of stream|damaged or truncated/i;

const ODD_CASES: Case[] = [
  { relPath: 'train/odd/empty.jpg', make: async () => Buffer.alloc(0), skippedBecause: /empty/i },
  { relPath: 'train/odd/truncated.jpg', make: async () => half(await rgb(1, 64, 48).jpeg().toBuffer()), skippedBecause: TRUNCATED },
  { relPath: 'train/odd/truncated.png', make: async () => half(await rgb(2, 64, 48).png().toBuffer()), skippedBecause: TRUNCATED },
  { relPath: 'train/odd/notes.jpg', make: async () => Buffer.from('meeting notes, saved with the wrong extension\n'), skippedBecause: /unsupported image format/i },
  { relPath: 'train/odd/bomb.png', make: async () => pngClaiming(100_000, 100_000), skippedBecause: /pixel limit/i },
  { relPath: 'train/odd/png named.jpg', make: () => rgb(3).png().toBuffer(), skippedBecause: null },
  { relPath: 'train/odd/one-pixel.png', make: () => rgb(4, 1, 1).png().toBuffer(), skippedBecause: null },
  {
    relPath: 'train/odd/sixteen-bit.png', skippedBecause: null,
    make: () => {
      const deep = Uint16Array.from(noisyPixels(5, 20, 20, 3), (v) => v * 257);
      return sharp(deep, { raw: { width: 20, height: 20, channels: 3 } }).toColourspace('rgb16').png().toBuffer();
    },
  },
  { relPath: 'train/odd/cmyk.jpg', make: () => rgb(6).toColourspace('cmyk').jpeg().toBuffer(), skippedBecause: null },
  {
    relPath: 'train/odd/alpha.png', skippedBecause: null,
    make: () => sharp(noisyPixels(7, 20, 20, 4), { raw: { width: 20, height: 20, channels: 4 } }).png().toBuffer(),
  },
  {
    relPath: 'train/odd/grey.png', skippedBecause: null,
    make: () => sharp(noisyPixels(8, 20, 20, 1), { raw: { width: 20, height: 20, channels: 1 } }).toColourspace('b-w').png().toBuffer(),
  },
  {
    relPath: 'train/odd/animated.gif', skippedBecause: null,
    make: () => sharp(noisyPixels(9, 20, 40, 3), { raw: { width: 20, height: 40, channels: 3, pageHeight: 20 } }).gif().toBuffer(),
  },
  { relPath: 'train/odd/holiday photo 2024 (1).png', make: () => rgb(10).png().toBuffer(), skippedBecause: null },
  { relPath: 'train/odd/ünïcødé-名前-Ωμέγα.png', make: () => rgb(11).png().toBuffer(), skippedBecause: null },
  { relPath: 'train/odd/emoji 🐱‍👤🚀.jpg', make: () => rgb(12).jpeg().toBuffer(), skippedBecause: null },
  // The held-out split is read by the kNN monitor, not the training loader: it must warn too.
  { relPath: 'test/odd/truncated test.jpg', make: async () => half(await rgb(13, 64, 48).jpeg().toBuffer()), skippedBecause: TRUNCATED },
];

const BATCH = SMALL.batchSize;

interface Corpus {
  root: string;
  cases: Case[];
  /** The link to a parent folder that a scan must not follow. */
  folderLoop: string;
  /** An image-named link that points at itself: it can never be read. */
  fileLoop: string;
  good: string[];
}

/**
 * train/good, train/odd (the cases, padded with good images to whole batches so one epoch draws every
 * file), test/good and test/odd, and two link loops.
 */
async function makeCorpus(): Promise<Corpus> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-bad-files-'));
  const write = async (relPath: string, bytes: Buffer) => {
    const file = path.join(root, ...relPath.split('/'));
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, bytes);
    return file;
  };
  for (const c of ODD_CASES) await write(c.relPath, await c.make());
  const trainCases = ODD_CASES.filter((c) => c.relPath.startsWith('train/')).length;
  const good: string[] = [];
  const goodTrain = 16 + ((BATCH - ((16 + trainCases) % BATCH)) % BATCH);
  for (let i = 0; i < goodTrain; i++) good.push(await write(`train/good/${i}.png`, await rgb(100 + i).png().toBuffer()));
  for (let i = 0; i < 3; i++) good.push(await write(`test/good/${i}.png`, await rgb(200 + i).png().toBuffer()));
  for (let i = 0; i < 2; i++) good.push(await write(`test/odd/${i}.png`, await rgb(300 + i).png().toBuffer()));
  const folderLoop = path.join(root, 'train', 'odd', 'loop');
  fs.symlinkSync('..', folderLoop, 'dir');
  const fileLoop = path.join(root, 'train', 'good', 'self-link.jpg');
  fs.symlinkSync('self-link.jpg', fileLoop);
  return { root, cases: ODD_CASES, folderLoop, fileLoop, good };
}

const absolute = (corpus: Corpus, c: Case) => path.join(corpus.root, ...c.relPath.split('/'));
const warningsNaming = (messages: EngineMessage[], file: string) =>
  messages.filter((m): m is WarningMessage => m.type === 'warning' && m.message.includes(file));

describe('bad files', function () {
  this.timeout(60_000);
  let corpus: Corpus;
  let runDir: string;
  const trainingMessages: EngineMessage[] = [];

  before(async () => {
    await selectBackend('wasm');
    corpus = await makeCorpus();
  });
  after(() => fs.rmSync(corpus.root, { recursive: true, force: true }));

  it('trains an epoch: oddities are used, each unusable file is skipped with one warning naming it and why', async () => {
    const done = await startTraining({ folder: corpus.root, config: resolveConfig('tiny', SMALL) }, (m) => trainingMessages.push(m), new StopSignal());
    runDir = done.runDir;
    assert.strictEqual(done.status, 'completed', JSON.stringify(trainingMessages.filter((m) => m.type === 'warning')));

    for (const c of corpus.cases) {
      const warnings = warningsNaming(trainingMessages, absolute(corpus, c));
      if (c.skippedBecause === null) {
        assert.deepStrictEqual(warnings, [], `${c.relPath} is decodable and must be trained on without a warning`);
      } else {
        assert.strictEqual(warnings.length, 1, `${c.relPath}: one warning, got ${JSON.stringify(warnings)}`);
        assert.match(warnings[0].message, c.skippedBecause, `${c.relPath}: ${warnings[0].message}`);
      }
    }
    for (const link of [corpus.folderLoop, corpus.fileLoop]) {
      assert.strictEqual(warningsNaming(trainingMessages, link).length, 1, `one warning for the link ${link}`);
    }
    for (const file of corpus.good) assert.deepStrictEqual(warningsNaming(trainingMessages, file), [], file);

    const skipped = corpus.cases.filter((c) => c.skippedBecause !== null).length;
    const epochs = readMetrics(runDir).filter((r): r is Extract<MetricRecord, { kind: 'epoch' }> => r.kind === 'epoch');
    assert.strictEqual(epochs.length, 1);
    assert.strictEqual(epochs[0].skippedFiles, skipped, 'the epoch record counts every skipped file');
    assert.ok(Number.isFinite(epochs[0].meanLoss), `mean loss ${epochs[0].meanLoss}`);
    assert.ok(epochs[0].knnTop1 !== null, 'the kNN monitor ran on the held-out split');
  });

  it('embeds the run: the index holds every decodable file, and each bad one is skipped with one warning, once', async () => {
    assert.ok(runDir, 'needs the trained run');
    const messages: EngineMessage[] = [];
    const result = await embedRun(runDir, (m) => messages.push(m));
    const loaded = loadIndex(runDir);
    assert.ok(loaded, 'an index was written');
    const { manifest } = loaded.stored;

    const usable = corpus.cases.filter((c) => c.skippedBecause === null).map((c) => c.relPath);
    const bad = corpus.cases.filter((c) => c.skippedBecause !== null);
    assert.strictEqual(result.images, usable.length + corpus.good.length);
    assert.strictEqual(manifest.files.relPath.length, result.images);
    for (const relPath of usable) assert.ok(manifest.files.relPath.includes(relPath), `${relPath} is indexed`);
    assert.deepStrictEqual([...manifest.skipped.relPath].sort(), bad.map((c) => c.relPath).sort());
    assert.ok(!manifest.files.relPath.some((p) => p.includes('loop') || p.includes('self-link')), 'links that loop are not indexed');
    for (let row = 0; row < result.images; row++) {
      const vector = loaded.vectors.subarray(row * manifest.dims, (row + 1) * manifest.dims);
      const norm = Math.hypot(...vector);
      assert.ok(Math.abs(norm - 1) < 1e-3, `row ${row} (${manifest.files.relPath[row]}) is a finite unit vector, norm ${norm}`);
    }
    for (const c of bad) {
      const warnings = warningsNaming(messages, absolute(corpus, c));
      assert.strictEqual(warnings.length, 1, `${c.relPath}: ${JSON.stringify(warnings)}`);
      assert.match(warnings[0].message, c.skippedBecause!);
    }

    const again: EngineMessage[] = [];
    assert.deepStrictEqual(await embedRun(runDir, (m) => again.push(m)), { images: result.images, reembedded: 0 });
    assert.deepStrictEqual(again.filter((m) => m.type === 'warning'), [], 'a known bad file is not reported again while unchanged');
  });

  it('finds neighbours of an oddly named image and refuses a bad one with an error that names it', async () => {
    assert.ok(runDir, 'needs the trained run');
    const emoji = absolute(corpus, corpus.cases.find((c) => c.relPath.includes('emoji'))!);
    const similar = await findSimilar(runDir, emoji, 5, () => undefined);
    assert.strictEqual(similar.neighbours.length, 5);
    assert.ok(similar.neighbours.every((n) => n.path !== emoji && fs.existsSync(n.path) && Number.isFinite(n.score)));

    for (const c of corpus.cases.filter((k) => k.skippedBecause !== null)) {
      const file = absolute(corpus, c);
      await assert.rejects(findSimilar(runDir, file, 5, () => undefined),
        (error: Error) => error.message.includes(file) && c.skippedBecause!.test(error.message), c.relPath);
    }
  });

  it('skips an unreadable file (chmod 000) with one warning, running as an unprivileged user when root', async function () {
    // Permission bits do not stop root, so as root the engine process runs as `nobody`; the file
    // is then as unreadable to it as it is to any ordinary user.
    const asRoot = process.getuid?.() === 0;
    if (asRoot && !readableBy(NOBODY, ENGINE_PROCESS)) {
      console.log(`      skipped: running as root, and user ${NOBODY} cannot read ${ENGINE_PROCESS} to run the engine unprivileged`);
      this.skip();
    }
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-unreadable-'));
    try {
      for (let i = 0; i < 16; i++) fs.writeFileSync(path.join(folder, `${i}.png`), await rgb(400 + i).png().toBuffer());
      const unreadable = path.join(folder, 'private.png');
      fs.writeFileSync(unreadable, await rgb(500).png().toBuffer());
      fs.chmodSync(unreadable, 0o000);
      fs.chmodSync(folder, 0o777); // the engine writes its run folder here, whoever it runs as
      const messages = await runEngine(message({ type: 'train', folder, config: resolveConfig('tiny', SMALL) }), asRoot ? NOBODY : undefined);
      const done = messages.find((m): m is DoneMessage => m.type === 'done');
      assert.ok(done, JSON.stringify(messages.filter((m) => m.type === 'error' || m.type === 'warning')));
      assert.strictEqual(done.status, 'completed');
      const warnings = warningsNaming(messages, unreadable);
      assert.strictEqual(warnings.length, 1, JSON.stringify(warnings));
      assert.match(warnings[0].message, /permission denied|EACCES/i);
      const epoch = readMetrics(done.runDir).find((r) => r.kind === 'epoch');
      assert.strictEqual(epoch?.kind === 'epoch' && epoch.skippedFiles, 1);
    } finally {
      fs.rmSync(folder, { recursive: true, force: true });
    }
  });
});

/** The uid the unreadable-file case runs as when the tests run as root. */
const NOBODY = 65534;

function readableBy(uid: number, file: string): boolean {
  try {
    execFileSync(process.execPath, ['-e', `require('fs').accessSync(${JSON.stringify(file)}, require('fs').constants.R_OK)`], { uid, gid: uid, stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Sends one request to a fresh engine process (optionally as another user) and collects its messages until done or error. */
function runEngine(request: object, uid?: number): Promise<EngineMessage[]> {
  return new Promise((resolve, reject) => {
    const child = fork(ENGINE_PROCESS, [], { uid, gid: uid, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    const messages: EngineMessage[] = [];
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    child.on('message', (m: EngineMessage) => {
      messages.push(m);
      if (m.type === 'done' || m.type === 'error') child.disconnect();
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (messages.some((m) => m.type === 'done' || m.type === 'error')) resolve(messages);
      else reject(new Error(`engine process exited (${code ?? signal}) without an answer: ${stderr}`));
    });
    child.send(request);
  });
}
