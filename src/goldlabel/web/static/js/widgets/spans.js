// Spans: select text with the mouse (or words with Shift+arrows), then pick a label with a
// number key or a label button. Offsets are kept in code points, as the server expects.

import { clear, digitOf, h } from '../dom.js';
import { TextIndex } from '../text_offsets.js';
import { colorClass } from './index.js';

export function createSpans(q, item, env) {
  const raw = item.data ? item.data[q.source] : undefined;
  const text = typeof raw === 'string' ? raw : '';
  const index = new TextIndex(text);
  const tokens = [...text.matchAll(/\S+/gu)].map((m) => wordBounds(m.index, m.index + m[0].length)); // UTF-16
  let spans = []; // {start, end, label} in code points, sorted
  let stickyLabel = null; // a label picked with no selection: applies to the next selections
  let pending = null; // a mouse selection waiting for its label: [u0, u1] in UTF-16 units
  let cursor = null; // keyboard word selection: {anchor, focus} token indexes
  let selected = null; // the span clicked (for Delete)

  const labelButtons = q.labels.map((label, i) => h('button', { type: 'button', tabindex: '-1',
    class: `opt label-chip ${colorClass(i)}`, 'aria-pressed': 'false', onclick: () => applyLabel(i) },
  i < 9 ? h('kbd', {}, String(i + 1)) : null, h('span', {}, label)));
  const textEl = h('div', { class: 'span-text', 'data-testid': 'span-text' });
  const list = h('ul', { class: 'span-list' });
  const note = h('p', { class: 'muted small' });
  const el = h('div', { class: 'spans' }, h('div', { class: 'options' }, labelButtons), textEl, list, note);
  textEl.addEventListener('mouseup', onMouseUp);
  if (!text) note.textContent = `This item has no text in “${q.source}”.`;

  function unitOffset(node, offset) {
    if (node.nodeType === Node.TEXT_NODE) {
      const seg = node.parentElement && node.parentElement.closest('[data-u]');
      return seg ? Number(seg.dataset.u) + offset : 0;
    }
    if (node === textEl) {
      const child = textEl.childNodes[offset];
      return child ? Number(child.dataset.u) : text.length;
    }
    const seg = node.closest ? node.closest('[data-u]') : null;
    return seg ? Number(seg.dataset.u) + (offset > 0 ? seg.textContent.length : 0) : 0;
  }

  // A keyboard "word" leaves out the punctuation around it ("10000," selects "10000"; "(Anker"
  // selects "Anker"): a label almost never wants it. A token of punctuation only stays whole.
  function wordBounds(u0, u1) {
    let a = u0;
    let b = u1;
    while (a < b && /[\p{Ps}\p{Pi}"'¿¡]/u.test(text[a])) a++;
    while (b > a && /[\p{Pe}\p{Pf}.,;:!?…"']/u.test(text[b - 1])) b--;
    return a < b ? [a, b] : [u0, u1];
  }

  function trimmed(u0, u1) {
    while (u0 < u1 && /\s/.test(text[u0])) u0++;
    while (u1 > u0 && /\s/.test(text[u1 - 1])) u1--;
    return [u0, u1];
  }

  function onMouseUp() {
    const sel = window.getSelection();
    if (!sel || !sel.rangeCount) return;
    const range = sel.getRangeAt(0);
    if (!textEl.contains(range.startContainer) || !textEl.contains(range.endContainer)) return;
    if (sel.isCollapsed) {
      // A click on a highlighted span selects it (Delete removes it).
      const u = unitOffset(range.startContainer, range.startOffset);
      const cp = index.toCodePoint(u);
      const hit = spans.findIndex((s) => s.start <= cp && cp < s.end);
      selected = hit >= 0 ? spans[hit] : null;
      render();
      return;
    }
    const [u0, u1] = trimmed(unitOffset(range.startContainer, range.startOffset),
      unitOffset(range.endContainer, range.endOffset));
    if (u1 <= u0) return;
    cursor = null;
    pending = [u0, u1];
    if (stickyLabel !== null) {
      addSpan(u0, u1, q.labels[stickyLabel]);
      sel.removeAllRanges();
    } else {
      note.textContent = 'Now pick a label (number key or button).';
      render(false);
    }
  }

  function selection() {
    if (pending) return pending;
    if (cursor && tokens.length) {
      const a = Math.min(cursor.anchor, cursor.focus);
      const b = Math.max(cursor.anchor, cursor.focus);
      return [tokens[a][0], tokens[b][1]];
    }
    return null;
  }

  function applyLabel(i) {
    const sel = selection();
    if (sel) {
      addSpan(sel[0], sel[1], q.labels[i]);
      window.getSelection()?.removeAllRanges();
      return;
    }
    stickyLabel = stickyLabel === i ? null : i;
    note.textContent = stickyLabel === null ? '' : `Selections now become “${q.labels[i]}” spans.`;
    render();
  }

  function addSpan(u0, u1, label) {
    const span = { start: index.toCodePoint(u0), end: index.toCodePoint(u1), label };
    pending = null;
    cursor = null;
    if (span.end <= span.start) return;
    if (spans.some((s) => s.start === span.start && s.end === span.end && s.label === span.label)) return;
    if (!q.allow_overlap && spans.some((s) => s.start < span.end && span.start < s.end)) {
      note.textContent = 'Spans may not overlap in this project.';
      render();
      return;
    }
    spans.push(span);
    spans.sort((a, b) => a.start - b.start || a.end - b.end || a.label.localeCompare(b.label));
    note.textContent = '';
    render();
    env.changed({ advance: false });
  }

  function removeSpan(span) {
    spans = spans.filter((s) => s !== span);
    if (selected === span) selected = null;
    render();
    env.changed({ advance: false });
  }

  // Split the text at every span and selection boundary; each piece is one element whose
  // data-u holds its UTF-16 start, which maps DOM selections back to offsets.
  function render(redrawText = true) {
    labelButtons.forEach((b, i) => b.setAttribute('aria-pressed', String(stickyLabel === i)));
    if (redrawText) {
      const sel = selection();
      const cuts = new Set([0, text.length]);
      for (const s of spans) {
        cuts.add(index.toUnit(s.start));
        cuts.add(index.toUnit(s.end));
      }
      if (sel) {
        cuts.add(sel[0]);
        cuts.add(sel[1]);
      }
      const points = [...cuts].sort((a, b) => a - b);
      clear(textEl);
      for (let k = 0; k + 1 < points.length; k++) {
        const [u0, u1] = [points[k], points[k + 1]];
        const cp = index.toCodePoint(u0);
        const covering = spans.filter((s) => s.start <= cp && cp < s.end);
        const classes = ['seg'];
        if (covering.length) {
          const top = covering[covering.length - 1];
          classes.push('hl', colorClass(q.labels.indexOf(top.label)));
          if (covering.length > 1) classes.push('multi');
          if (covering.includes(selected)) classes.push('picked');
        }
        if (sel && u0 >= sel[0] && u1 <= sel[1]) classes.push('kbd-sel');
        const seg = h('span', { class: classes.join(' '), dataset: { u: String(u0) } }, text.slice(u0, u1));
        if (covering.length) seg.title = covering.map((s) => s.label).join(', ');
        textEl.appendChild(seg);
      }
    }
    clear(list);
    for (const s of spans) {
      const i = q.labels.indexOf(s.label);
      list.appendChild(h('li', { class: `span-chip ${colorClass(i)}${s === selected ? ' picked' : ''}` },
        h('b', {}, s.label), ' ', h('span', { class: 'span-chip-text' }, index.sliceCodePoints(s.start, s.end)),
        h('button', { type: 'button', class: 'remove', tabindex: '-1', title: 'Remove this span',
          'aria-label': `Remove ${s.label} span`, onclick: () => removeSpan(s) }, '×')));
    }
  }
  render();

  return {
    el,
    getValue: () => spans.map((s) => ({ ...s, text: index.sliceCodePoints(s.start, s.end) })),
    setValue(v) {
      spans = [];
      if (Array.isArray(v)) {
        for (const s of v) {
          if (s && Number.isInteger(s.start) && Number.isInteger(s.end) && q.labels.includes(s.label) &&
            s.start >= 0 && s.end <= index.length && s.start < s.end) {
            spans.push({ start: s.start, end: s.end, label: s.label });
          }
        }
      }
      render();
    },
    isComplete: () => true, // "no spans" is an answer
    keydown(e) {
      const n = digitOf(e);
      if (n && n <= q.labels.length) {
        applyLabel(n - 1);
        return true;
      }
      if ((e.key === 'ArrowRight' || e.key === 'ArrowLeft') && tokens.length && !e.ctrlKey && !e.metaKey) {
        const dir = e.key === 'ArrowRight' ? 1 : -1;
        pending = null;
        if (!cursor) cursor = { anchor: dir > 0 ? 0 : tokens.length - 1, focus: dir > 0 ? 0 : tokens.length - 1 };
        else {
          const focus = Math.max(0, Math.min(tokens.length - 1, cursor.focus + dir));
          cursor = { anchor: e.shiftKey ? cursor.anchor : focus, focus };
        }
        render();
        return true;
      }
      if ((e.key === 'Delete' || e.key === 'Backspace') && (selected || spans.length)) {
        removeSpan(selected || spans[spans.length - 1]);
        return true;
      }
      if (e.key === 'Escape' && (pending || cursor || selected || stickyLabel !== null)) {
        pending = null;
        cursor = null;
        selected = null;
        stickyLabel = null;
        note.textContent = '';
        render();
        return true;
      }
      return false;
    },
    focus() {},
    hints: [['mouse', 'select text, then press a label key'], ['→ ←', 'move the word cursor'],
      ['Shift+→ ←', 'extend the word selection'], ['1–9', 'label the selection (or pick a label for the next selections)'],
      ['Delete', 'remove the clicked (or the last) span']],
    consumes: [q.source],
  };
}
