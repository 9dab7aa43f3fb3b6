/**
 * The base of every header view: a window [off, end) of a Buffer, read and written through a
 * DataView over that Buffer. Views are flyweights owned by the pipeline: allocated once and
 * re-pointed per packet with reset(); re-pointing at the same Buffer allocates nothing.
 */

import { EMPTY, EMPTY_DV, dataViewOf } from './bytes.js';

export class View {
  buf: Buffer = EMPTY;
  dv: DataView = EMPTY_DV;
  off = 0;
  end = 0;

  /** reset points the view at buf[off, end). No bounds are checked here: see checkLen(). */
  reset(buf: Buffer, off: number, end: number): this {
    if (buf !== this.buf) {
      this.buf = buf;
      this.dv = dataViewOf(buf);
    }
    this.off = off;
    this.end = end;
    return this;
  }
}
