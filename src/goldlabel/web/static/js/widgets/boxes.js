// Boxes: draw on the image with the mouse, drag a box to move it, drag a corner to resize,
// Delete removes the selected box, number keys pick the label (of the selected box and of the
// next ones), arrow keys nudge. Boxes are kept in relative coordinates (0..1) and converted
// for "pixel" questions.

import { clear, digitOf, h } from '../dom.js';
import { clamp01, createImageStage } from '../image_view.js';
import { colorClass } from './index.js';

const MIN_SIZE = 0.005; // smaller drags are clicks, not boxes
const round6 = (v) => Math.round(v * 1e6) / 1e6;
const DRAW_NOTE = 'Drag on the image to draw a box.';

export function createBoxes(q, item, env) {
  const data = item.data || {};
  const pixel = q.coordinates === 'pixel';
  const size = { w: Number(data[q.width_field]) || 0, h: Number(data[q.height_field]) || 0 };
  let boxes = []; // {x, y, w, h, label} relative
  let current = 0; // label for new boxes
  let selected = -1;
  let drag = null;

  const layer = h('div', { class: 'boxes-layer' });
  const stage = createImageStage(q, item, env, { testid: 'boxes-layer', emptyNote: '', onLabel: (i) => pickLabel(i),
    layer, colorClass });
  const { url, note, el } = stage;
  const point = (e) => stage.point(e);

  layer.addEventListener('pointerdown', (e) => {
    if (e.button !== 0 || !url) return;
    e.preventDefault();
    const p = point(e);
    const handle = e.target.dataset.handle;
    const boxEl = e.target.closest('.box');
    if (boxEl) {
      selected = Number(boxEl.dataset.index);
      const b = { ...boxes[selected] };
      drag = { mode: handle || 'move', start: p, orig: b };
    } else {
      boxes.push({ x: p.x, y: p.y, w: 0, h: 0, label: q.labels[current] });
      selected = boxes.length - 1;
      drag = { mode: 'draw', start: p, orig: null };
    }
    layer.setPointerCapture(e.pointerId);
    render();
  });
  layer.addEventListener('pointermove', (e) => {
    if (!drag) return;
    const p = point(e);
    const b = boxes[selected];
    const o = drag.orig;
    if (drag.mode === 'draw') {
      Object.assign(b, { x: Math.min(p.x, drag.start.x), y: Math.min(p.y, drag.start.y),
        w: Math.abs(p.x - drag.start.x), h: Math.abs(p.y - drag.start.y) });
    } else if (drag.mode === 'move') {
      b.x = clamp01(Math.min(1 - o.w, o.x + p.x - drag.start.x));
      b.y = clamp01(Math.min(1 - o.h, o.y + p.y - drag.start.y));
    } else {
      // A corner handle: the opposite corner stays put.
      const left = drag.mode.includes('w') ? p.x : o.x;
      const right = drag.mode.includes('e') ? p.x : o.x + o.w;
      const top = drag.mode.includes('n') ? p.y : o.y;
      const bottom = drag.mode.includes('s') ? p.y : o.y + o.h;
      Object.assign(b, { x: Math.min(left, right), y: Math.min(top, bottom),
        w: Math.abs(right - left), h: Math.abs(bottom - top) });
    }
    render();
  });
  const finish = () => {
    if (!drag) return;
    const b = boxes[selected];
    if (b && (b.w < MIN_SIZE || b.h < MIN_SIZE)) {
      if (drag.mode === 'draw') {
        boxes.splice(selected, 1);
        selected = -1;
      } else Object.assign(b, drag.orig);
    }
    drag = null;
    render();
    env.changed({ advance: false });
  };
  layer.addEventListener('pointerup', finish);
  layer.addEventListener('pointercancel', finish);

  function pickLabel(i) {
    current = i;
    if (selected >= 0) {
      boxes[selected].label = q.labels[i];
      env.changed({ advance: false });
    }
    render();
  }

  function render() {
    stage.setLabel(current);
    clear(layer);
    boxes.forEach((b, i) => {
      const div = h('div', { class: `box ${colorClass(q.labels.indexOf(b.label))}${i === selected ? ' selected' : ''}`,
        dataset: { index: String(i) } }, h('span', { class: 'box-label' }, `${i + 1} ${b.label}`));
      // CSSOM writes are allowed by the CSP (style-src 'self'); style attributes are not.
      div.style.left = `${b.x * 100}%`;
      div.style.top = `${b.y * 100}%`;
      div.style.width = `${b.w * 100}%`;
      div.style.height = `${b.h * 100}%`;
      if (i === selected) {
        for (const corner of ['nw', 'ne', 'sw', 'se']) div.appendChild(h('span', { class: `handle ${corner}`, dataset: { handle: corner } }));
      }
      layer.appendChild(div);
    });
    if (url && !boxes.length && !note.textContent) note.textContent = DRAW_NOTE;
    else if (boxes.length && note.textContent === DRAW_NOTE) note.textContent = '';
  }

  function exportBox(b) {
    let x = clamp01(round6(b.x));
    let y = clamp01(round6(b.y));
    const w = round6(Math.min(b.w, 1 - x));
    const hh = round6(Math.min(b.h, 1 - y));
    if (pixel) return { x: x * size.w, y: y * size.h, w: w * size.w, h: hh * size.h, label: b.label };
    return { x, y, w, h: hh, label: b.label };
  }

  function importBox(b) {
    if (!b || !q.labels.includes(b.label)) return null;
    const sx = pixel ? size.w : 1;
    const sy = pixel ? size.h : 1;
    if (!sx || !sy) return null;
    const box = { x: b.x / sx, y: b.y / sy, w: b.w / sx, h: b.h / sy, label: b.label };
    return [box.x, box.y, box.w, box.h].every(Number.isFinite) && box.w > 0 && box.h > 0 ? box : null;
  }

  render();
  return {
    el,
    getValue: () => boxes.filter((b) => b.w >= MIN_SIZE && b.h >= MIN_SIZE).map(exportBox),
    setValue(v) {
      boxes = Array.isArray(v) ? v.map(importBox).filter(Boolean) : [];
      selected = -1;
      render();
    },
    isComplete: () => true, // "nothing to box" is an answer
    keydown(e) {
      const n = digitOf(e);
      if (n && n <= q.labels.length) {
        pickLabel(n - 1);
        return true;
      }
      if ((e.key === 'Delete' || e.key === 'Backspace') && selected >= 0) {
        boxes.splice(selected, 1);
        selected = -1;
        render();
        env.changed({ advance: false });
        return true;
      }
      if (e.key === 'Tab' && boxes.length && !e.ctrlKey) {
        selected = (selected + (e.shiftKey ? boxes.length - 1 : 1) + boxes.length) % boxes.length;
        render();
        return true;
      }
      const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
      if (moves[e.key] && selected >= 0) {
        const b = boxes[selected];
        const d = e.shiftKey ? 0.02 : 0.002;
        b.x = clamp01(Math.min(1 - b.w, b.x + moves[e.key][0] * d));
        b.y = clamp01(Math.min(1 - b.h, b.y + moves[e.key][1] * d));
        render();
        env.changed({ advance: false });
        return true;
      }
      if (e.key === 'Escape' && selected >= 0) {
        selected = -1;
        render();
        return true;
      }
      return stage.viewport.keydown(e);
    },
    focus() {},
    hints: [['mouse', 'drag to draw; drag a box to move it, a corner to resize'], ['1–9', 'label for the selected box and new boxes'],
      ['Tab', 'select the next box'], ['arrows', 'nudge the selected box (Shift: more)'], ['Delete', 'delete the selected box'], ...stage.viewport.hints],
    consumes: stage.consumes,
  };
}
