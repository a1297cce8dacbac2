// The image viewer every image in the workspace goes through: the item's own image and the
// stages that boxes, polygons and keypoints draw on. It fits the image to the panel (a small
// image is scaled up, a large one down), zooms with the wheel (around the pointer) and keys,
// pans by dragging (middle button, or Space + drag where the left button draws; any button on a
// plain image) and with the arrow keys, and has brightness / contrast for dark images.
//
// Zooming resizes the canvas (the image and the layer over it) instead of scaling it with a CSS
// transform: shapes are drawn in the displayed pixels, so strokes, handles and labels keep their
// size, and the one coordinate transform below (pointer -> fraction of the image -> the answer's
// coordinates) stays exact at any zoom.

import { h, safeImageUrl } from './dom.js';

const MAX_ZOOM = 32; // displayed pixels per image pixel, at most
const STEP = 1.25; // one wheel notch or one +/- key
const PAN = 60; // px an arrow key moves the image
// Space + drag pans: Space counts as held only while the pointer is over an image (one
// listener for the page, whatever the number of viewers made), so it still presses a focused
// button elsewhere.
let hovered = null;
let spaceHeld = false;
document.addEventListener('keydown', (e) => {
  if (e.key !== ' ' || !hovered || !hovered.isConnected) return;
  if (e.target instanceof HTMLInputElement || e.target instanceof HTMLTextAreaElement) return;
  spaceHeld = true;
  hovered.classList.add('can-pan');
  e.preventDefault();
});
document.addEventListener('keyup', (e) => {
  if (e.key !== ' ') return;
  spaceHeld = false;
  document.querySelectorAll('.viewport.can-pan').forEach((f) => f.classList.remove('can-pan'));
});

export const clamp01 = (v) => Math.min(1, Math.max(0, v));
const round6 = (v) => Math.round(v * 1e6) / 1e6;

// A viewer around `img`; `layer` (optional) is laid over the image at its displayed size.
// `draws`: the left button belongs to the layer (drawing), so panning needs Space or the
// middle button.
export function createViewport(img, { layer = null, draws = false, label = 'image' } = {}) {
  const canvas = h('div', { class: 'viewport-canvas' }, img, layer);
  const frame = h('div', { class: 'viewport', tabindex: '-1', 'data-testid': 'viewport' }, canvas);
  const zoomText = h('output', { class: 'zoom-value', 'aria-live': 'off' }, '–');
  const range = (name, key) => h('input', { type: 'range', min: '20', max: '300', step: '5', value: '100',
    'aria-label': `${name} (${key})`, title: `${name} (${key} / Shift+${key})`, class: `viewer-${name.toLowerCase()}` });
  const brightness = range('Brightness', 'B');
  const contrast = range('Contrast', 'C');
  const tools = h('div', { class: 'viewer-tools', role: 'toolbar', 'aria-label': `${label} view` },
    h('button', { type: 'button', class: 'small', title: 'zoom out (-)', 'aria-label': 'zoom out', onclick: () => zoomBy(1 / STEP) }, '−'),
    h('button', { type: 'button', class: 'small', title: 'fit to the panel (0)', onclick: () => fit() }, 'Fit'),
    h('button', { type: 'button', class: 'small', title: 'zoom in (+)', 'aria-label': 'zoom in', onclick: () => zoomBy(STEP) }, '+'),
    zoomText,
    h('label', { class: 'viewer-range' }, h('span', {}, 'Brightness'), brightness),
    h('label', { class: 'viewer-range' }, h('span', {}, 'Contrast'), contrast),
    h('button', { type: 'button', class: 'small', title: 'normal brightness and contrast', onclick: () => setFilters(100, 100) }, 'Reset'));
  const el = h('div', { class: 'viewer' }, tools, frame);

  const view = { scale: 1, x: 0, y: 0, fitted: true };
  const natural = { w: 0, h: 0 };
  const listeners = [];
  let pan = null;

  function size() {
    return { w: frame.clientWidth || 1, h: frame.clientHeight || 1 };
  }
  function fitScale() {
    const f = size();
    return natural.w && natural.h ? Math.min(f.w / natural.w, f.h / natural.h) : 1;
  }

  // Keep the image in view: centred along an axis where it is smaller than the panel, else
  // with no gap at either edge.
  function clampPan() {
    const f = size();
    const w = natural.w * view.scale;
    const ht = natural.h * view.scale;
    view.x = w <= f.w ? (f.w - w) / 2 : Math.min(0, Math.max(f.w - w, view.x));
    view.y = ht <= f.h ? (f.h - ht) / 2 : Math.min(0, Math.max(f.h - ht, view.y));
  }

  function apply() {
    if (!natural.w) return;
    clampPan();
    // CSSOM writes are allowed by the CSP (style-src 'self'); style attributes are not.
    canvas.style.left = `${view.x}px`;
    canvas.style.top = `${view.y}px`;
    canvas.style.width = `${natural.w * view.scale}px`;
    canvas.style.height = `${natural.h * view.scale}px`;
    zoomText.textContent = `${Math.round(view.scale * 100)}%`;
    frame.classList.toggle('zoomed', view.scale > fitScale() * 1.001);
    listeners.forEach((fn) => fn());
  }

  // The panel is as wide as the column and as tall as the image at that width, up to 65% of
  // the window: a wide image leaves no empty band under it, a tall one fits the height.
  function sizeFrame() {
    if (!natural.w) return;
    const maxH = Math.max(240, Math.round(window.innerHeight * 0.65));
    frame.style.height = `${Math.min(maxH, Math.max(160, Math.round(frame.clientWidth * natural.h / natural.w)))}px`;
  }

  function fit() {
    sizeFrame();
    view.scale = fitScale();
    view.fitted = true;
    apply();
  }

  // Zoom by `factor` keeping the image point under (cx, cy) (panel pixels) in place.
  function zoomBy(factor, cx = size().w / 2, cy = size().h / 2) {
    if (!natural.w) return;
    const low = Math.min(1, fitScale());
    const next = Math.min(MAX_ZOOM, Math.max(low, view.scale * factor));
    view.x = cx - (cx - view.x) * (next / view.scale);
    view.y = cy - (cy - view.y) * (next / view.scale);
    view.scale = next;
    view.fitted = Math.abs(next - fitScale()) < 1e-6;
    apply();
  }

  function setFilters(b, c) {
    brightness.value = String(b);
    contrast.value = String(c);
    applyFilters();
  }
  function applyFilters() {
    const b = Number(brightness.value);
    const c = Number(contrast.value);
    img.style.filter = b === 100 && c === 100 ? '' : `brightness(${b}%) contrast(${c}%)`;
  }
  brightness.addEventListener('input', applyFilters);
  contrast.addEventListener('input', applyFilters);

  img.addEventListener('load', () => {
    natural.w = img.naturalWidth;
    natural.h = img.naturalHeight;
    fit();
  });
  if (typeof ResizeObserver !== 'undefined') {
    let width = 0;
    new ResizeObserver(() => {
      if (frame.clientWidth === width) return; // our own height change
      width = frame.clientWidth;
      if (view.fitted) fit();
      else apply();
    }).observe(frame);
  }

  frame.addEventListener('wheel', (e) => {
    if (!natural.w) return;
    e.preventDefault();
    const r = frame.getBoundingClientRect();
    zoomBy(e.deltaY < 0 ? STEP : 1 / STEP, e.clientX - r.left, e.clientY - r.top);
  }, { passive: false });

  // Capture phase: a pan starts before the layer sees the press as the start of a drawing.
  frame.addEventListener('pointerdown', (e) => {
    const wants = e.button === 1 || (e.button === 0 && (spaceHeld || !draws));
    if (!wants || !natural.w) return;
    e.preventDefault();
    e.stopPropagation();
    pan = { x: e.clientX - view.x, y: e.clientY - view.y };
    frame.setPointerCapture(e.pointerId);
    frame.classList.add('panning');
  }, true);
  frame.addEventListener('pointermove', (e) => {
    if (!pan) return;
    view.x = e.clientX - pan.x;
    view.y = e.clientY - pan.y;
    view.fitted = false;
    apply();
  });
  const stop = () => {
    pan = null;
    frame.classList.remove('panning');
  };
  frame.addEventListener('pointerup', stop);
  frame.addEventListener('pointercancel', stop);
  frame.addEventListener('pointerenter', () => { hovered = frame; });
  frame.addEventListener('pointerleave', () => { if (hovered === frame) hovered = null; });

  return {
    el, frame, canvas, view, natural,
    fit, zoomBy, setFilters,
    onChange(fn) { listeners.push(fn); },
    // The displayed size of the image in CSS pixels (what an SVG layer draws in).
    box() {
      const r = canvas.getBoundingClientRect();
      return { w: r.width || 1, h: r.height || 1 };
    },
    // The one pointer -> image transform: the pointer as fractions (0..1) of the image.
    point(e) {
      const r = canvas.getBoundingClientRect();
      return { x: clamp01((e.clientX - r.left) / (r.width || 1)), y: clamp01((e.clientY - r.top) / (r.height || 1)) };
    },
    // Zoom, pan and filter keys; true when the key was used.
    keydown(e) {
      if (e.ctrlKey || e.metaKey || e.altKey || !natural.w) return false;
      const moves = { ArrowLeft: [1, 0], ArrowRight: [-1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] };
      switch (e.key) {
        case '+': case '=': zoomBy(STEP); return true;
        case '-': case '_': zoomBy(1 / STEP); return true;
        case '0': fit(); return true;
        case 'b': case 'B':
          setFilters(Math.min(300, Math.max(20, Number(brightness.value) + (e.key === 'b' ? 10 : -10))), Number(contrast.value));
          return true;
        case 'c': case 'C':
          setFilters(Number(brightness.value), Math.min(300, Math.max(20, Number(contrast.value) + (e.key === 'c' ? 10 : -10))));
          return true;
        default:
      }
      if (moves[e.key] && view.scale > fitScale() * 1.001) {
        view.x += moves[e.key][0] * PAN;
        view.y += moves[e.key][1] * PAN;
        view.fitted = false;
        apply();
        return true;
      }
      return false;
    },
    hints: [['wheel / + −', 'zoom the image (0: fit)'], ['drag / arrows', 'pan the zoomed image'],
      ['B / Shift+B', 'brighter / darker'], ['C / Shift+C', 'more / less contrast']],
  };
}

// The item's image shown for itself (no drawing on it): any drag pans.
export function createImageViewer(url, { alt = 'item image', onFailed } = {}) {
  const img = h('img', { class: 'item-image', alt, draggable: 'false' });
  const viewport = createViewport(img, { label: alt });
  img.addEventListener('error', onFailed);
  img.src = url;
  return viewport;
}

// The image stage the shape widgets draw on: the viewer, the layer, the label buttons, the
// conversion between fractions of the image and the question's coordinates ("relative" or
// "pixel", with the image size from the item data).
export function createImageStage(q, item, env, { testid, emptyNote, onLabel, layer, colorClass }) {
  const data = item.data || {};
  const url = safeImageUrl(data[q.source]);
  const pixel = q.coordinates === 'pixel';
  const size = { w: Number(data[q.width_field]) || 0, h: Number(data[q.height_field]) || 0 };
  const labelButtons = q.labels.map((label, i) => h('button', { type: 'button', tabindex: '-1',
    class: `opt label-chip ${colorClass(i)}`, 'aria-pressed': 'false', onclick: () => onLabel(i) },
  i < 9 ? h('kbd', {}, String(i + 1)) : null, h('span', {}, label)));
  const img = h('img', { class: 'boxes-image', alt: 'item image', draggable: 'false' });
  layer.setAttribute('data-testid', testid);
  const viewport = createViewport(img, { layer, draws: true });
  const status = h('p', { class: 'shapes-status small', 'aria-live': 'polite' });
  const note = h('p', { class: 'muted small' });
  const el = h('div', { class: 'boxes shapes' }, h('div', { class: 'options' }, labelButtons), status, viewport.el, note);
  // An image that cannot be shown cannot be answered ("no objects" would be a wrong answer):
  // the workspace disables submitting for this item and leaves Skip.
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

  return {
    el, layer, img, url, pixel, status, note, labelButtons, viewport,
    box: () => viewport.box(),
    point: (e) => viewport.point(e),
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
    // Redraw when the displayed image changes size (load, zoom, window resize).
    onResize(render) {
      img.addEventListener('load', render);
      viewport.onChange(render);
    },
    setLabel(current) {
      labelButtons.forEach((b, i) => b.setAttribute('aria-pressed', String(current === i)));
    },
    consumes: [q.source, ...(pixel ? [q.width_field, q.height_field] : [])],
  };
}
