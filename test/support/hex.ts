/** hex('08 00 00 00 | 00 00 ff 00') -> Buffer; whitespace, '|' and newlines are ignored. */
export function hex(text: string): Buffer {
  const clean = text.replace(/#[^\n]*/g, '').replace(/[\s|:]/g, '');
  if (clean.length % 2 !== 0 || /[^0-9a-f]/i.test(clean)) throw new Error(`bad hex: ${text}`);
  return Buffer.from(clean, 'hex');
}

/** A buffer of `len` bytes pre-filled with 0xa5, so unwritten fields show up in comparisons. */
export function dirty(len: number): Buffer {
  return Buffer.alloc(len, 0xa5);
}
