// What the polygon and keypoint widgets share: the image stage with an SVG layer drawn in the
// displayed pixels (re-drawn when the image is resized, so shapes stay exact at any scale),
// pointer positions as fractions of the image (0..1), conversion to the question's coordinates
// ("relative" or "pixel", with the image size from the item data), and the label buttons.

import { h, safeImageUrl } from '../dom.js';
import { colorClass } from './index.js';

const SVG_NS = 'http://www.w3.org/2000/svg';
export const clamp01 = (v) => Math.min(1, Math.max(0, v));
const round6 = (v) => Math.round(v * 1e6) / 1e6;

// An SVG element (h() makes HTML elements); attributes are set as text, never parsed.
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'dataset') Object.assign(el.dataset, value);
    else el.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (typeof child === 'string') el.appendChild(document.createTextNode(child));
    else el.appendChild(child);
  }
  return el;
}

export function createStage(q, item, env, { testid, emptyNote, onLabel }) {
  const data = item.data || {};
  const url = safeImageUrl(data[q.source]);
  const pixel = q.coordinates === 'pixel';
  const size = { w: Number(data[q.width_field]) || 0, h: Number(data[q.height_field]) || 0 };
  const labelButtons = q.labels.map((label, i) => h('button', { type: 'button', tabindex: '-1',
    class: `opt label-chip ${colorClass(i)}`, 'aria-pressed': 'false', onclick: () => onLabel(i) },
  i < 9 ? h('kbd', {}, String(i + 1)) : null, h('span', {}, label)));
  const img = h('img', { class: 'boxes-image', alt: 'item image', draggable: 'false' });
  const layer = svg('svg', { class: 'shapes-layer', 'data-testid': testid });
  const stage = h('div', { class: 'boxes-stage' }, img, layer);
  const status = h('p', { class: 'shapes-status small', 'aria-live': 'polite' });
  const note = h('p', { class: 'muted small' });
  const el = h('div', { class: 'boxes shapes' }, h('div', { class: 'options' }, labelButtons), status, stage, note);
  img.addEventListener('error', () => {
    note.textContent = 'The image could not be loaded.';
    if (env.mediaFailed) env.mediaFailed();
  });
  if (url) img.src = url;
  else {
    note.textContent = `This item has no usable image URL in “${q.source}” (https, a media path or data:image).`;
    if (env.mediaFailed) env.mediaFailed();
  }
  if (url && emptyNote) note.textContent = emptyNote;

  const stageApi = {
    el, layer, img, url, pixel, status, note, labelButtons,
    // displayed size in CSS pixels (the SVG is drawn in these units)
    box() {
      const r = layer.getBoundingClientRect();
      return { w: r.width || 1, h: r.height || 1 };
    },
    // the pointer as fractions of the image
    point(e) {
      const r = layer.getBoundingClientRect();
      return { x: clamp01((e.clientX - r.left) / r.width), y: clamp01((e.clientY - r.top) / r.height) };
    },
    // fraction -> the answer's coordinates, and back (null when a pixel size is unknown)
    out(x, y) {
      const rx = clamp01(round6(x));
      const ry = clamp01(round6(y));
      return pixel ? [round6(rx * size.w), round6(ry * size.h)] : [rx, ry];
    },
    in(x, y) {
      const sx = pixel ? size.w : 1;
      const sy = pixel ? size.h : 1;
      if (!sx || !sy || !Number.isFinite(x) || !Number.isFinite(y)) return null;
      return { x: x / sx, y: y / sy };
    },
    setLabel(current) {
      labelButtons.forEach((b, i) => b.setAttribute('aria-pressed', String(current === i)));
    },
    consumes: [q.source, ...(pixel ? [q.width_field, q.height_field] : [])],
  };
  return stageApi;
}

// Redraw when the displayed image size changes (window resize, zoom, image load).
export function onResize(stage, render) {
  stage.img.addEventListener('load', render);
  if (typeof ResizeObserver !== 'undefined') new ResizeObserver(() => render()).observe(stage.img);
}

// Whether segments p1-p2 and p3-p4 cross or touch (collinear overlaps included).
function orient(a, b, c) {
  const v = (b.x - a.x) * (c.y - a.y) - (b.y - a.y) * (c.x - a.x);
  return Math.abs(v) < 1e-15 ? 0 : Math.sign(v);
}
function onSegment(a, b, c) {
  return Math.min(a.x, b.x) <= c.x && c.x <= Math.max(a.x, b.x) && Math.min(a.y, b.y) <= c.y && c.y <= Math.max(a.y, b.y);
}
function segmentsMeet(p1, p2, p3, p4) {
  const d1 = orient(p3, p4, p1);
  const d2 = orient(p3, p4, p2);
  const d3 = orient(p1, p2, p3);
  const d4 = orient(p1, p2, p4);
  if (d1 * d2 < 0 && d3 * d4 < 0) return true;
  return (d1 === 0 && onSegment(p3, p4, p1)) || (d2 === 0 && onSegment(p3, p4, p2))
    || (d3 === 0 && onSegment(p1, p2, p3)) || (d4 === 0 && onSegment(p1, p2, p4));
}

// The server's rule (label_schema/polygons.py): at least 3 distinct points, no two
// non-adjacent edges meeting, a non-zero area. Returns a message, or '' when fine.
export function polygonProblem(points) {
  const n = points.length;
  const distinct = new Set(points.map((p) => `${p.x},${p.y}`)).size;
  if (distinct < 3) return 'A polygon needs at least 3 points.';
  if (distinct < n) return 'A point repeats: the outline would touch itself.';
  for (let i = 0; i < n; i += 1) {
    for (let j = i + 1; j < n; j += 1) {
      if (j === i + 1 || (i === 0 && j === n - 1)) continue; // neighbours share a vertex
      if (segmentsMeet(points[i], points[(i + 1) % n], points[j], points[(j + 1) % n])) {
        return 'The outline crosses itself: move a point or draw it again.';
      }
    }
  }
  let area = 0;
  for (let i = 0; i < n; i += 1) area += points[i].x * points[(i + 1) % n].y - points[(i + 1) % n].x * points[i].y;
  return Math.abs(area) > 1e-12 ? '' : 'The points lie on one line: the polygon has no area.';
}
