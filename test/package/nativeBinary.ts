// What a native file (.node, .so, .dylib, .dll) is built for, read from its own headers: ELF
// (Linux), Mach-O (macOS, thin or universal) and PE (Windows). For ELF it also names the C library
// the file links (glibc or musl), from the libc its dynamic section lists as needed: a glibc build
// does not load on Alpine, nor a musl one on other Linux distributions.
import * as fs from 'fs';

export type BinaryFormat = 'elf' | 'mach-o' | 'pe';
/** Architectures by VS Code's names (its platform targets' second half). */
export type Arch = 'x64' | 'arm64' | 'ia32' | 'arm' | `unknown ${string}`;

export interface BinaryDescription {
  format: BinaryFormat;
  /** One for a thin binary; a universal Mach-O lists each slice. */
  archs: Arch[];
  /** ELF only: the libraries its dynamic section needs (DT_NEEDED). */
  needed?: string[];
  /** ELF only: which C library it links, when it links one. */
  libc?: 'glibc' | 'musl';
}

const ELF_MACHINES: Record<number, Arch> = { 0x03: 'ia32', 0x28: 'arm', 0x3e: 'x64', 0xb7: 'arm64' };
const MACHO_CPUS: Record<number, Arch> = { 0x7: 'ia32', 0x01000007: 'x64', 0xc: 'arm', 0x0100000c: 'arm64' };
const PE_MACHINES: Record<number, Arch> = { 0x14c: 'ia32', 0x8664: 'x64', 0xaa64: 'arm64', 0x1c4: 'arm' };

const archOf = (table: Record<number, Arch>, code: number): Arch => table[code] ?? `unknown 0x${code.toString(16)}`;

/** Bytes [offset, offset + length) of a file, fewer at its end. */
export type Reader = (offset: number, length: number) => Buffer;

/** Describes the file at `file`, reading only the headers it needs (native libraries run to tens of MiB). */
export function describeFile(file: string): BinaryDescription {
  const fd = fs.openSync(file, 'r');
  try {
    return describeBinary((offset, length) => {
      const buffer = Buffer.alloc(length);
      return buffer.subarray(0, fs.readSync(fd, buffer, 0, length, offset));
    });
  } finally {
    fs.closeSync(fd);
  }
}

/** Describes a file (its bytes, or a reader of them), or throws when it is none of the three formats. */
export function describeBinary(source: Buffer | Reader): BinaryDescription {
  const read: Reader = Buffer.isBuffer(source) ? (offset, length) => source.subarray(offset, offset + length) : source;
  const bytes = read(0, 0x40);
  if (bytes.length >= 0x40 && bytes.readUInt32BE(0) === 0x7f454c46) return describeElf(bytes, read);
  if (bytes.length >= 8 && (bytes.readUInt32LE(0) === 0xfeedfacf || bytes.readUInt32LE(0) === 0xfeedface)) {
    return { format: 'mach-o', archs: [archOf(MACHO_CPUS, bytes.readUInt32LE(4))] };
  }
  if (bytes.length >= 8 && (bytes.readUInt32BE(0) === 0xcafebabe || bytes.readUInt32BE(0) === 0xcafebabf)) return describeFatMachO(read);
  if (bytes.length >= 0x40 && bytes.toString('latin1', 0, 2) === 'MZ') return describePe(bytes, read);
  throw new Error(`not an ELF, Mach-O or PE file (starts with ${bytes.subarray(0, 4).toString('hex')})`);
}

/** 64-bit little-endian ELF, the only kind any VS Code target runs. */
function describeElf(bytes: Buffer, read: Reader): BinaryDescription {
  if (bytes[4] !== 2 || bytes[5] !== 1) throw new Error(`a ${bytes[4] === 1 ? '32' : '64'}-bit ${bytes[5] === 2 ? 'big' : 'little'}-endian ELF file: no VS Code target runs it`);
  const archs = [archOf(ELF_MACHINES, bytes.readUInt16LE(0x12))];
  const needed = elfNeeded(bytes, read);
  const libc = needed.some((name) => /^libc\.musl/.test(name)) ? 'musl' : needed.includes('libc.so.6') ? 'glibc' : undefined;
  return { format: 'elf', archs, needed, ...(libc ? { libc } : {}) };
}

/** DT_NEEDED entries: the dynamic section's string offsets into the string table DT_STRTAB names. */
function elfNeeded(header: Buffer, read: Reader): string[] {
  const phentsize = header.readUInt16LE(0x36);
  const table = read(Number(header.readBigUInt64LE(0x20)), phentsize * header.readUInt16LE(0x38));
  const segments = Array.from({ length: Math.floor(table.length / phentsize) }, (_, i) => {
    const at = i * phentsize;
    return {
      type: table.readUInt32LE(at), offset: Number(table.readBigUInt64LE(at + 8)),
      vaddr: Number(table.readBigUInt64LE(at + 16)), filesz: Number(table.readBigUInt64LE(at + 32)),
    };
  });
  const dynamic = segments.find((s) => s.type === 2 /* PT_DYNAMIC */);
  if (!dynamic) return []; // statically linked
  const section = read(dynamic.offset, dynamic.filesz);
  const entries: { tag: bigint; value: number }[] = [];
  for (let at = 0; at + 16 <= section.length; at += 16) {
    const tag = section.readBigInt64LE(at);
    if (tag === 0n) break; // DT_NULL
    entries.push({ tag, value: Number(section.readBigUInt64LE(at + 8)) });
  }
  const strtabAddress = entries.find((e) => e.tag === 5n /* DT_STRTAB */)?.value;
  const load = segments.find((s) => s.type === 1 /* PT_LOAD */ && strtabAddress !== undefined &&
    s.vaddr <= strtabAddress && strtabAddress < s.vaddr + s.filesz);
  if (strtabAddress === undefined || !load) throw new Error('an ELF dynamic section without a loaded string table');
  const strtab = strtabAddress - load.vaddr + load.offset;
  return entries.filter((e) => e.tag === 1n /* DT_NEEDED */).map((e) => {
    const name = read(strtab + e.value, 256);
    const end = name.indexOf(0);
    return name.toString('latin1', 0, end < 0 ? name.length : end);
  });
}

/** A universal binary: big-endian fat header, then one fat_arch (20 bytes, or 32 for fat_arch_64) per slice. */
function describeFatMachO(read: Reader): BinaryDescription {
  const bytes = read(0, 8 + 16 * 32);
  const entrySize = bytes.readUInt32BE(0) === 0xcafebabf ? 32 : 20;
  const count = bytes.readUInt32BE(4);
  // Java class files share 0xcafebabe; their "count" is a version number far above any slice count.
  if (count === 0 || count > 16) throw new Error(`a 0xcafebabe file with ${count} slices: not a universal Mach-O binary`);
  return { format: 'mach-o', archs: Array.from({ length: count }, (_, i) => archOf(MACHO_CPUS, bytes.readUInt32BE(8 + i * entrySize))) };
}

function describePe(bytes: Buffer, read: Reader): BinaryDescription {
  const header = read(bytes.readUInt32LE(0x3c), 6);
  if (header.length < 6 || header.readUInt32BE(0) !== 0x50450000) throw new Error('an MZ file without a PE header');
  return { format: 'pe', archs: [archOf(PE_MACHINES, header.readUInt16LE(4))] };
}

/** Native code by file name: Node addons, shared libraries (versioned .so too), dylibs and DLLs. */
export const isNativeFileName = (name: string): boolean => /\.(node|dylib|dll)$|\.so(\.\d+)*$/.test(name);
