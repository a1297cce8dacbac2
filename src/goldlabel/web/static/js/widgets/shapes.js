// What the polygon and keypoint widgets share: their image stage (image_view.js: the viewer,
// the pointer -> image transform and the answer's coordinates, shared with boxes) with an SVG
// layer drawn in the displayed pixels (re-drawn when the image is resized or zoomed, so shapes
// stay exact at any scale), and the polygon rule.

import { createImageStage } from '../image_view.js';
import { colorClass } from './index.js';

const SVG_NS = 'http://www.w3.org/2000/svg';

export function createStage(q, item, env, { testid, emptyNote, onLabel }) {
  const layer = svg('svg', { class: 'shapes-layer' });
  return createImageStage(q, item, env, { testid, emptyNote, onLabel, layer, colorClass });
}

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
