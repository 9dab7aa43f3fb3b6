/**
 * Where a JSON text stops being JSON, as a line and column a user can go to. JSON.parse's own
 * messages give a character position for some faults and none for others (Node 20: "Unexpected
 * token 'x', ... is not valid JSON"), so the text is scanned again here by a small RFC 8259
 * recogniser; cold path only (config files), never on data.
 */

export interface JsonPosition {
  /** 0-based character offset of the first character that cannot be part of valid JSON. */
  readonly offset: number;
  /** 1-based line and column of that character (a tab is one column). */
  readonly line: number;
  readonly column: number;
}

/** jsonErrorPosition: the position of the first fault in `text`, or null when it is valid JSON. */
export function jsonErrorPosition(text: string): JsonPosition | null {
  const offset = firstFault(text);
  return offset === null ? null : lineColumn(text, offset);
}

export function lineColumn(text: string, offset: number): JsonPosition {
  let line = 1, lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) { line++; lineStart = i + 1; }
  }
  return { offset, line, column: offset - lineStart + 1 };
}

class Fault {
  constructor(readonly at: number) {}
}

function firstFault(s: string): number | null {
  let i = 0;
  const fail = (): never => { throw new Fault(i); };
  const ws = (): void => {
    while (i < s.length) {
      const c = s[i];
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r') i++;
      else break;
    }
  };
  const literal = (word: string): void => {
    // A misspelt word is wrong from its first character (`n1` is not a broken `null`).
    if (s.slice(i, i + word.length) !== word) fail();
    i += word.length;
  };
  const string = (): void => {
    i++; // opening quote
    for (;;) {
      if (i >= s.length) fail();
      const c = s.charCodeAt(i);
      if (c === 0x22) { i++; return; }
      if (c < 0x20) fail();
      if (c === 0x5c) {
        i++;
        const e = s[i];
        if (e === 'u') {
          i++;
          for (let k = 0; k < 4; k++) { if (!/[0-9a-fA-F]/.test(s[i] ?? '')) fail(); i++; }
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i++;
        else fail();
      } else i++;
    }
  };
  const digits = (): void => {
    if (!/[0-9]/.test(s[i] ?? '')) fail();
    while (/[0-9]/.test(s[i] ?? '')) i++;
  };
  const number = (): void => {
    if (s[i] === '-') i++;
    if (s[i] === '0') i++;
    else digits();
    if (s[i] === '.') { i++; digits(); }
    if (s[i] === 'e' || s[i] === 'E') {
      i++;
      if (s[i] === '+' || s[i] === '-') i++;
      digits();
    }
  };
  const value = (): void => {
    ws();
    const c = s[i];
    if (c === '{') {
      i++; ws();
      if (s[i] === '}') { i++; return; }
      for (;;) {
        ws();
        if (s[i] !== '"') fail();
        string(); ws();
        if (s[i] !== ':') fail();
        i++;
        value(); ws();
        if (s[i] === ',') { i++; continue; }
        if (s[i] === '}') { i++; return; }
        fail();
      }
    }
    if (c === '[') {
      i++; ws();
      if (s[i] === ']') { i++; return; }
      for (;;) {
        value(); ws();
        if (s[i] === ',') { i++; continue; }
        if (s[i] === ']') { i++; return; }
        fail();
      }
    }
    if (c === '"') return string();
    if (c === 't') return literal('true');
    if (c === 'f') return literal('false');
    if (c === 'n') return literal('null');
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return number();
    fail();
  };
  try {
    if (s.charCodeAt(0) === 0xfeff) i++; // a byte-order mark, as readFileSync leaves it
    value();
    ws();
    return i < s.length ? i : null;
  } catch (e) {
    if (e instanceof Fault) return e.at;
    throw e;
  }
}
