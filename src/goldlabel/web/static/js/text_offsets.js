// JavaScript strings index UTF-16 code units; the server (Python) indexes Unicode code points.
// They differ after any character outside the Basic Multilingual Plane (emoji, some CJK), so
// span offsets are converted at the boundary, both ways.

export class TextIndex {
  constructor(text) {
    this.text = text;
    const units = text.length;
    this.cpAtUnit = new Int32Array(units + 1);
    const unitAtCp = [];
    let cp = 0;
    for (let u = 0; u < units; u++) {
      this.cpAtUnit[u] = cp;
      const code = text.charCodeAt(u);
      const isHighSurrogate = code >= 0xd800 && code <= 0xdbff && u + 1 < units;
      if (isHighSurrogate) {
        const next = text.charCodeAt(u + 1);
        if (next >= 0xdc00 && next <= 0xdfff) {
          unitAtCp.push(u);
          this.cpAtUnit[u + 1] = cp; // the middle of a pair belongs to its character
          u++;
          cp++;
          continue;
        }
      }
      unitAtCp.push(u);
      cp++;
    }
    this.cpAtUnit[units] = cp;
    unitAtCp.push(units);
    this.unitAtCp = Int32Array.from(unitAtCp);
    this.length = cp; // in code points
  }

  toCodePoint(unit) {
    return this.cpAtUnit[Math.max(0, Math.min(unit, this.text.length))];
  }

  toUnit(codePoint) {
    return this.unitAtCp[Math.max(0, Math.min(codePoint, this.length))];
  }

  sliceCodePoints(start, end) {
    return this.text.slice(this.toUnit(start), this.toUnit(end));
  }
}

export function codePointLength(text) {
  let n = 0;
  for (const _ of text) n++;
  return n;
}
