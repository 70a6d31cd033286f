// The pieces of `npm run package` that need no package: the header reader that test/package uses
// to say what a native file is built for (on the real binaries npm installed, which cover ELF,
// universal Mach-O and PE), and scripts/package.mjs's check of an archive's listing.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { pathToFileURL } from 'url';
import { describeBinary, describeFile, isNativeFileName } from '../package/nativeBinary';

const repoRoot = path.resolve(__dirname, '..', '..', '..');
const dawnBuilds = path.join(repoRoot, 'node_modules', 'webgpu', 'dist');

type CheckListing = (target: string, listing: string[]) => { missing: string[]; forbidden: string[] };
// package.mjs is an ES module; tsc would turn import() into require().
const importModule = new Function('url', 'return import(url)') as (url: string) => Promise<{ checkListing: CheckListing }>;

describe('native binary headers', () => {
  const dawn = (build: string) => path.join(dawnBuilds, build, 'dawn.node');
  const read = (file: string) => fs.readFileSync(file);

  it("reads an ELF file's architecture, C library and the libraries it needs (sharp's Linux x64 addon)", function () {
    let addon: string;
    try {
      addon = require.resolve('@img/sharp-linux-x64/sharp.node');
    } catch {
      this.skip(); // npm installs sharp's Linux x64 build on Linux x64 (glibc) only
    }
    const sharpAddon = describeFile(addon);
    assert.deepStrictEqual([sharpAddon.format, sharpAddon.archs, sharpAddon.libc], ['elf', ['x64'], 'glibc']);
    assert.ok(sharpAddon.needed?.some((name) => name.startsWith('libvips-cpp.so')), `needs ${sharpAddon.needed?.join(', ')}`);
  });

  for (const [build, format, archs] of [
    ['linux-x64', 'elf', ['x64']], ['linux-arm64', 'elf', ['arm64']], ['win32-x64', 'pe', ['x64']], ['win32-arm64', 'pe', ['arm64']],
    ['darwin-universal', 'mach-o', ['x64', 'arm64']],
  ] as const) {
    it(`reads Dawn's ${build} build as ${format} ${archs.join(' + ')}`, function () {
      if (!fs.existsSync(dawn(build))) this.skip(); // the webgpu package is not installed
      const binary = describeFile(dawn(build));
      assert.strictEqual(binary.format, format);
      assert.deepStrictEqual([...binary.archs].sort(), [...archs].sort());
    });
  }

  it('tells musl from glibc by the libc an ELF file needs', function () {
    const file = dawn('linux-x64');
    if (!fs.existsSync(file)) this.skip(); // the webgpu package is not installed
    const bytes = Buffer.from(read(file));
    // Same length, so every string offset stays valid: glibc's soname becomes a musl-like one.
    const at = bytes.indexOf('libc.so.6\0');
    assert.ok(at > 0, 'Dawn links libc.so.6');
    assert.strictEqual(describeBinary(bytes).libc, 'glibc');
    bytes.write('libc.musl\0', at, 'latin1');
    assert.strictEqual(describeBinary(bytes).libc, 'musl');
  });

  it('reads a thin Mach-O header and refuses what is no binary', () => {
    const thin = Buffer.alloc(32);
    thin.writeUInt32LE(0xfeedfacf, 0);
    thin.writeUInt32LE(0x0100000c, 4);
    assert.deepStrictEqual(describeBinary(thin), { format: 'mach-o', archs: ['arm64'] });
    assert.throws(() => describeBinary(Buffer.from('#!/bin/sh\necho not native\n')), /not an ELF, Mach-O or PE file/);
    const javaClass = Buffer.alloc(16);
    javaClass.writeUInt32BE(0xcafebabe, 0);
    javaClass.writeUInt32BE(52, 4);
    assert.throws(() => describeBinary(javaClass), /not a universal Mach-O binary/);
  });

  it('names native files by their extensions, versioned shared libraries included', () => {
    assert.deepStrictEqual(
      ['sharp-linux-x64.node', 'libvips-cpp.so.8.17.3', 'libvips-cpp.8.17.3.dylib', 'libvips-42.dll', 'index.js', 'glibconfig.h', 'versions.json']
        .map(isNativeFileName),
      [true, true, true, true, false, false, false]);
  });
});

describe("package.mjs's check of an archive", function () {
  let checkListing: CheckListing;
  before(async () => {
    ({ checkListing } = await importModule(pathToFileURL(path.join(repoRoot, 'scripts', 'package.mjs')).href));
  });

  it('refuses sources, declarations, maps, the threaded wasm binary and other platforms\' binaries', () => {
    const leaks = [
      'extension/node_modules/sharp/src/pipeline.cc', 'extension/node_modules/sharp/lib/index.d.ts', 'extension/dist/extension.js.map',
      'extension/dist/tfjs-backend-wasm-threaded-simd.wasm', 'extension/node_modules/@img/sharp-libvips-linux-x64/lib/glib-2.0/include/glibconfig.h',
      'extension/node_modules/@img/sharp-darwin-arm64/lib/sharp-darwin-arm64.node', 'extension/node_modules/webgpu/dist/win32-x64/dawn.node',
      'extension/media/src/panel.ts', 'extension/node_modules/@tensorflow/tfjs/package.json',
    ];
    const { forbidden } = checkListing('linux-x64', ['extension/package.json', ...leaks]);
    assert.deepStrictEqual(forbidden, leaks);
    assert.deepStrictEqual(checkListing('alpine-x64', ['extension/node_modules/webgpu/index.js']).forbidden, ['extension/node_modules/webgpu/index.js']);
  });

  it("asks for the target's own sharp, libvips and Dawn", () => {
    const { missing } = checkListing('darwin-arm64', ['extension/package.json']);
    for (const file of ['node_modules/@img/sharp-darwin-arm64/lib/sharp-darwin-arm64.node', 'node_modules/@img/sharp-libvips-darwin-arm64/lib/libvips-cpp.*',
      'node_modules/webgpu/dist/darwin-universal/dawn.node', 'dist/engineProcess.js']) {
      assert.ok(missing.includes(file), `${file} not asked for: ${missing.join(', ')}`);
    }
    assert.ok(!checkListing('win32-x64', []).missing.some((file) => file.includes('sharp-libvips')), 'Windows has libvips inside @img/sharp-win32-x64');
  });
});
