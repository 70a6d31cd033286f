// What reading a binary file of a run (checkpoint weights, index vectors) needs before checking it:
// its SHA-256 as written beside it, and its bytes as float32 values. Imports no tfjs.
import * as crypto from 'crypto';

/** SHA-256 of `bytes`, as lowercase hex. */
export const digestOf = (bytes: Uint8Array) => crypto.createHash('sha256').update(bytes).digest('hex');

/** The bytes as an ArrayBuffer of their own (a Buffer's may be a larger, shared pool). */
export const ownBuffer = (bytes: Uint8Array) => bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;

/** `bytes` (a multiple of 4 long) read as native-order float32, without a copy where alignment allows. */
export function float32View(bytes: Uint8Array): Float32Array {
  // A Float32Array view needs 4-byte alignment; only pooled (small) buffers can lack it.
  return bytes.byteOffset % 4 === 0
    ? new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4)
    : new Float32Array(ownBuffer(bytes));
}
