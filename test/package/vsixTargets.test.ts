// The .vsix of every platform target (npm run package) holds native code built for that platform
// and for no other: each .node, .so, .dylib and .dll is read from the archive and its headers say
// its format, architecture and (on Linux) C library. The package for this machine's platform then
// loads sharp and Dawn from its own node_modules and decodes an image, as the installed extension
// would. Run by `npm run test:package` after `npm run package`; the packages must be there.
import * as assert from 'assert';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { describeFile, isNativeFileName, type Arch, type BinaryFormat } from './nativeBinary';

const repoRoot = path.resolve(__dirname, '..', '..', '..');
const manifest = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { name: string; version: string };

interface Expected {
  format: BinaryFormat;
  arch: Arch;
  /** Linux: the C library every ELF file must link. */
  libc?: 'glibc' | 'musl';
  /** sharp's name for the platform: @img/sharp-<sharp>, @img/sharp-libvips-<sharp>. */
  sharp: string;
  /** webgpu's dist/<dawn>; none where Dawn has no build. */
  dawn?: string;
}

/** VS Code's platform targets, as the Marketplace names them, and what their binaries must be. */
const TARGETS: Record<string, Expected> = {
  'linux-x64': { format: 'elf', arch: 'x64', libc: 'glibc', sharp: 'linux-x64', dawn: 'linux-x64' },
  'linux-arm64': { format: 'elf', arch: 'arm64', libc: 'glibc', sharp: 'linux-arm64', dawn: 'linux-arm64' },
  'darwin-x64': { format: 'mach-o', arch: 'x64', sharp: 'darwin-x64', dawn: 'darwin-universal' },
  'darwin-arm64': { format: 'mach-o', arch: 'arm64', sharp: 'darwin-arm64', dawn: 'darwin-universal' },
  'win32-x64': { format: 'pe', arch: 'x64', sharp: 'win32-x64', dawn: 'win32-x64' },
  'alpine-x64': { format: 'elf', arch: 'x64', libc: 'musl', sharp: 'linuxmusl-x64' },
};

const vsixOf = (target: string) => path.join(repoRoot, `${manifest.name}-${manifest.version}-${target}.vsix`);

/** Unpacks the target's node_modules (where all native code is) into a fresh folder; returns its extension/. */
function unpack(target: string, into: string): string {
  const vsix = vsixOf(target);
  if (!fs.existsSync(vsix)) throw new Error(`${path.relative(repoRoot, vsix)} not found: run npm run package (it builds every target) first`);
  execFileSync('unzip', ['-q', '-o', vsix, 'extension/package.json', 'extension/node_modules/*', '-d', into]);
  return path.join(into, 'extension');
}

function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile()).map((entry) => path.join(entry.parentPath, entry.name));
}

/** The VS Code target of the machine running the tests, when it is one of the packaged ones. */
function hostTarget(): string | undefined {
  const musl = process.platform === 'linux' &&
    !(process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header?.glibcVersionRuntime;
  const target = musl ? `alpine-${process.arch}` : `${process.platform}-${process.arch}`;
  return target in TARGETS ? target : undefined;
}

describe('the package of each platform', function () {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-vsix-'));
  after(() => fs.rmSync(scratch, { recursive: true, force: true }));

  for (const [target, expected] of Object.entries(TARGETS)) {
    describe(target, () => {
      let extension: string;
      before(() => {
        extension = unpack(target, path.join(scratch, target));
      });

      it(`carries native files built for ${target} only`, () => {
        const natives = filesUnder(path.join(extension, 'node_modules')).filter((file) => isNativeFileName(path.basename(file)));
        const wrong = natives.flatMap((file) => {
          const name = path.relative(extension, file);
          let binary;
          try {
            binary = describeFile(file);
          } catch (error) {
            return [`${name}: ${(error as Error).message}`];
          }
          // A universal macOS binary (Dawn's) qualifies when it has the target's slice.
          const problems = [
            binary.format !== expected.format && `is ${binary.format}, not ${expected.format}`,
            !binary.archs.includes(expected.arch) && `is built for ${binary.archs.join(' + ')}, not ${expected.arch}`,
            expected.format !== 'mach-o' && binary.archs.length !== 1 && `has ${binary.archs.length} architectures`,
            expected.libc && binary.libc && binary.libc !== expected.libc && `links ${binary.libc} (${binary.needed?.join(', ')}), not ${expected.libc}`,
          ].filter(Boolean);
          return problems.length ? [`${name} ${problems.join(', ')}`] : [];
        });
        assert.deepStrictEqual(wrong, []);
        const names = natives.map((file) => path.relative(extension, file).split(path.sep).join('/'));
        const sharpAddon = `node_modules/@img/sharp-${expected.sharp}/lib/sharp-${expected.sharp}.node`;
        assert.ok(names.includes(sharpAddon), `no ${sharpAddon} among ${names.join(', ')}`);
        const libvips = names.find((name) => /\/libvips-cpp[.-]/.test(name));
        assert.ok(libvips, `no libvips among ${names.join(', ')}`);
        if (expected.libc) {
          // The library that decodes the images must link the C library of the target's distributions.
          assert.strictEqual(describeFile(path.join(extension, libvips)).libc, expected.libc, `${libvips}'s C library`);
        }
        if (expected.dawn) assert.ok(names.includes(`node_modules/webgpu/dist/${expected.dawn}/dawn.node`), `no Dawn among ${names.join(', ')}`);
      });

      it("holds no other platform's packages or builds", () => {
        const foreign = [
          ...fs.readdirSync(path.join(extension, 'node_modules', '@img'))
            .filter((name) => /^sharp-/.test(name) && name !== `sharp-${expected.sharp}` && name !== `sharp-libvips-${expected.sharp}`)
            .map((name) => `node_modules/@img/${name}`),
          ...(fs.existsSync(path.join(extension, 'node_modules', 'webgpu', 'dist'))
            ? fs.readdirSync(path.join(extension, 'node_modules', 'webgpu', 'dist')).filter((name) => name !== expected.dawn)
              .map((name) => `node_modules/webgpu/dist/${name}`)
            : []),
        ];
        assert.deepStrictEqual(foreign, []);
        if (!expected.dawn) assert.ok(!fs.existsSync(path.join(extension, 'node_modules', 'webgpu')), 'webgpu ships without a Dawn build for this target');
      });
    });
  }

  it("this machine's package decodes an image with its own sharp and loads its own Dawn", function () {
    const target = hostTarget();
    if (!target) this.skip(); // no package is built for this machine's platform
    const extension = unpack(target, path.join(scratch, `${target}-loaded`));
    // A child process resolves from the unpacked extension alone, as the installed engine does.
    const script = `
      const sharp = require('sharp');
      (async () => {
        const png = await sharp({ create: { width: 4, height: 3, channels: 3, background: '#ff8000' } }).png().toBuffer();
        const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
        const dawn = ${TARGETS[target].dawn ? "await import('webgpu')" : 'undefined'};
        console.log(JSON.stringify({ sharp: require.resolve('sharp'), size: [info.width, info.height], pixel: [...data.subarray(0, 3)],
          dawn: dawn && typeof dawn.create }));
      })().catch((error) => { console.error(error); process.exit(1); });`;
    const env = { ...process.env };
    delete env.NODE_PATH;
    const result = JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: extension, env, encoding: 'utf8' })) as
      { sharp: string; size: number[]; pixel: number[]; dawn?: string };
    assert.ok(result.sharp.startsWith(extension), `sharp came from ${result.sharp}`);
    assert.deepStrictEqual(result.size, [4, 3]);
    assert.deepStrictEqual(result.pixel, [255, 128, 0]);
    if (TARGETS[target].dawn) assert.strictEqual(result.dawn, 'function', "webgpu's create");
  });
});
