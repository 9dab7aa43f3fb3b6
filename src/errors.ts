/**
 * flatnet's error hierarchy, for cold paths only (configuration, control calls, file formats,
 * the CLI). The data path never throws on packet content: it returns a `Drop` code and counts it.
 *
 * Every error carries a stable `code` (Node's `ERR_*` style); tests assert on `code`, never on
 * the message. Lower-level errors are wrapped with `{ cause }`.
 */

export class FlatnetError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Malformed or truncated bytes met by a cold-path parser (`parseXxx`, pcap readers). */
export class WireError extends FlatnetError {}

/** An invalid configuration value; `field` names the offending path ("peers[1].podCidr"). */
export class ConfigError extends FlatnetError {
  readonly field: string;
  constructor(code: string, field: string, message: string, options?: { cause?: unknown }) {
    super(code, field === '' ? message : `${field}: ${message}`, options);
    this.field = field;
  }
}

/** A failed system call in the native addon, shaped like Node's ErrnoException. */
export class NativeError extends FlatnetError {
  readonly errno: number;
  readonly syscall: string;
  constructor(code: string, errno: number, syscall: string, message: string) {
    super(code, message);
    this.errno = errno;
    this.syscall = syscall;
  }
}

/** A pcap or pcapng file that cannot be read (bad magic, unsupported link type, corrupt block). */
export class PcapError extends FlatnetError {}

/**
 * A packet description or hex frame for `flatnet trace` that cannot be built (always
 * ERR_TRACE_PACKET). `word` is the 1-based word of the description the error is about (one
 * past the last word when the description ended too early), or null (hex input, or the
 * description as a whole).
 */
export class TracePacketError extends FlatnetError {
  readonly word: number | null;
  constructor(word: number | null, message: string, options?: { cause?: unknown }) {
    super('ERR_TRACE_PACKET', message, options);
    this.word = word;
  }
}
