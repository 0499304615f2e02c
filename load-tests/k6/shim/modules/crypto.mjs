// @ts-check
// `k6/crypto`: sha256 (hex).
import { createHash } from 'node:crypto';

/** @param {string | ArrayBuffer} input @param {'hex'} encoding */
export function sha256(input, encoding) {
  if (encoding !== 'hex') throw new Error(`k6 shim: sha256 output encoding ${encoding} is not implemented (hex only)`);
  return createHash('sha256').update(typeof input === 'string' ? Buffer.from(input, 'utf8') : Buffer.from(input)).digest('hex');
}

export default { sha256 };
