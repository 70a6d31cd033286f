// `simsiam doctor`: the report a person pastes into a bug report, checked against what this process
// itself can see (versions, cores), and each backend's check as it runs in its own process.
import * as assert from 'assert';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs';
import { formatEnvironment, probeBackend, type EnvironmentReport } from '../../src/training/doctor/environment';

const BIN = path.join(__dirname, '..', '..', '..', 'bin', 'simsiam.js');
/** No natively built backend: these tests are about the report, not about tfjs-node. */
const { SIMSIAM_BACKENDS_DIR: _unused, ...ENV_WITHOUT_NATIVE } = process.env;

function doctor(...args: string[]) {
  const result = spawnSync(process.execPath, [BIN, 'doctor', ...args], { encoding: 'utf8', env: ENV_WITHOUT_NATIVE, timeout: 240_000 });
  assert.strictEqual(result.status, 0, result.stderr);
  return result;
}

describe('simsiam doctor', function () {
  this.timeout(300_000);

  it('reports versions, cores and memory as this machine has them, and each backend asked for, in auto order', function () {
    const report = JSON.parse(doctor('--json', '--backend', 'wasm', 'node').stdout) as EnvironmentReport;
    assert.strictEqual(report.node, process.version);
    assert.strictEqual(report.arch, process.arch);
    assert.strictEqual(report.cpus.count, os.availableParallelism());
    assert.strictEqual(report.memory.totalBytes, os.totalmem());
    assert.deepStrictEqual(report.versions, { tfjs: tf.version.tfjs, sharp: sharp.versions.sharp, libvips: sharp.versions.vips });
    assert.deepStrictEqual(report.backends.map((b) => b.name), ['node', 'wasm']);
    const [node, wasm] = report.backends;
    assert.ok(!node.loaded && /tfjs-node is not installed/.test(node.reason), JSON.stringify(node));
    assert.ok(wasm.loaded && /^wasm \((no )?simd\)$/.test(wasm.detail), JSON.stringify(wasm));
    assert.ok(wasm.loaded && wasm.imagesPerSecond !== null && wasm.imagesPerSecond > 0, JSON.stringify(wasm));
    assert.ok(Array.isArray(report.webgpu.adapters));
    assert.ok(report.webgpu.adapters.length > 0 || (report.webgpu.reason ?? '').length > 0, 'no adapter and no reason');
  });

  it('prints one line per fact for a person, and which backend auto would use', function () {
    const { stdout, stderr } = doctor('--backend', 'node', 'wasm');
    assert.match(stdout, new RegExp(`^Node ${process.version.replace(/\./g, '\\.')} \\(N-API \\d+\\)$`, 'm'));
    assert.match(stdout, /^ {2}node: not available — tfjs-node is not installed/m);
    assert.match(stdout, /^ {2}wasm: wasm \((no )?simd\) — [\d.]+ img\/s \(tiny model, 8 × 32 px, 3-step probe\)$/m);
    assert.match(stdout, /^Of those checked, --backend auto uses wasm here\.$/m);
    assert.match(stderr, /checked wasm: loads/);
  });

  it('names a backend whose check does not answer in time instead of waiting for it', async function () {
    const report = await probeBackend('cpu', 1);
    assert.deepStrictEqual(report, { name: 'cpu', loaded: false, reason: 'no answer within 0.001 s' });
  });

  it('says when tfjs-node-gpu runs without a CUDA device', function () {
    const report: EnvironmentReport = {
      node: 'v20.0.0', napi: '9', platform: 'Linux', arch: 'x64', cpus: { model: 'x', count: 2 },
      memory: { totalBytes: 2 ** 32, freeBytes: 2 ** 31 }, versions: { tfjs: '4.22.0', sharp: '0.34.5', libvips: '8.17' },
      webgpu: { adapters: [], reason: 'no WebGPU adapter' },
      backends: [{ name: 'node-gpu', loaded: true, detail: 'tfjs-node-gpu 4.22.0', gpu: false, imagesPerSecond: 0.25, probe: { images: 8, size: 32 } }],
    };
    const lines = formatEnvironment(report);
    assert.ok(lines.includes('  node-gpu: tfjs-node-gpu 4.22.0, on the CPU (no CUDA device in use) — 0.25 img/s (tiny model, 8 × 32 px, 3-step probe)'), lines.join('\n'));
    assert.ok(lines.includes('  none: no WebGPU adapter'), lines.join('\n'));
  });
});
