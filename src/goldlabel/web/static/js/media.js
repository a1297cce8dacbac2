// What an item shows besides plain fields: its image, audio, video, PDF or chat transcript.
// Each viewer is {el, keydown(e), hints, ...}; the workspace hands it the keys the active
// question did not use. Everything is built with h() (text stays text, no innerHTML) and loads
// only what the page's CSP allows: media from our own media route (or https where the rule
// allows it); a PDF page is a PNG the server rendered (no script, style or font from a PDF).

import { h, mediaSourceProblem, safeImageUrl } from './dom.js';
import { createImageViewer, createViewport } from './image_view.js';
import { renderMarkdown } from './markdown.js';

const SPEEDS = [0.5, 0.75, 1, 1.25, 1.5, 2];
const MEDIA_PDF_PATH = /^\/api\/v1\/projects\/[0-9]+\/media\/[0-9a-f]{64}\.pdf$/;

// 83.4 s -> "1:23.4"
export function formatTime(seconds) {
  const t = Math.max(0, Number(seconds) || 0);
  const m = Math.floor(t / 60);
  const s = (t - m * 60).toFixed(1).padStart(4, '0');
  return `${m}:${s}`;
}

function unusable(text, onFailed, what) {
  onFailed(what);
  return { el: h('p', { class: 'muted small' }, text), keydown: () => false, hints: [] };
}

// Audio and video: the browser's own controls, plus play / seek / speed buttons and keys, a
// time read-out, and (video) frame steps. `time()` is what a timestamped note inserts.
function createPlayer(kind, url, { fps = 25, onFailed }) {
  const media = h(kind, { controls: true, preload: 'metadata', class: `${kind}-player`, 'data-testid': `${kind}-player` });
  media.addEventListener('error', () => onFailed(kind));
  media.src = url;
  const time = h('output', { class: 'player-time', 'data-testid': 'player-time' }, '0:00.0');
  const speed = h('select', { 'aria-label': 'playback speed', 'data-testid': 'player-speed' },
    SPEEDS.map((s) => h('option', { value: String(s), selected: s === 1 }, `${s}×`)));
  speed.addEventListener('change', () => { media.playbackRate = Number(speed.value); });
  const play = h('button', { type: 'button', class: 'small', 'data-testid': 'player-play', onclick: () => toggle() }, 'Play ', h('kbd', {}, 'K'));
  const tools = h('div', { class: 'player-tools', role: 'toolbar', 'aria-label': `${kind} controls` },
    play,
    h('button', { type: 'button', class: 'small', onclick: () => seek(-5) }, '−5 s ', h('kbd', {}, 'J')),
    h('button', { type: 'button', class: 'small', onclick: () => seek(5) }, '+5 s ', h('kbd', {}, 'L')),
    kind === 'video' ? h('button', { type: 'button', class: 'small', onclick: () => step(-1) }, '◀ frame ', h('kbd', {}, ',')) : null,
    kind === 'video' ? h('button', { type: 'button', class: 'small', onclick: () => step(1) }, 'frame ▶ ', h('kbd', {}, '.')) : null,
    h('label', { class: 'player-speed' }, 'Speed ', speed), time);
  const el = h('div', { class: `player ${kind}` }, media, tools);

  const show = () => {
    const total = Number.isFinite(media.duration) ? ` / ${formatTime(media.duration)}` : '';
    time.textContent = `${formatTime(media.currentTime)}${total}`;
    play.firstChild.textContent = media.paused ? 'Play ' : 'Pause ';
  };
  ['timeupdate', 'loadedmetadata', 'play', 'pause', 'seeked', 'durationchange'].forEach((ev) => media.addEventListener(ev, show));
  function toggle() {
    if (media.paused) media.play().catch(() => {});
    else media.pause();
  }
  function seek(by) {
    const end = Number.isFinite(media.duration) ? media.duration : Infinity;
    media.currentTime = Math.min(end, Math.max(0, media.currentTime + by));
  }
  function step(frames) {
    media.pause();
    seek(frames / fps);
  }
  function setSpeed(delta) {
    const i = Math.min(SPEEDS.length - 1, Math.max(0, SPEEDS.indexOf(media.playbackRate) + delta));
    media.playbackRate = SPEEDS[i < 0 ? 2 : i];
    speed.value = String(media.playbackRate);
  }
  return {
    el, media,
    time: () => formatTime(media.currentTime),
    keydown(e) {
      if (e.ctrlKey || e.metaKey || e.altKey) return false;
      switch (e.key) {
        case 'k': case 'K': toggle(); return true;
        case 'j': case 'J': seek(-5); return true;
        case 'l': case 'L': seek(5); return true;
        case '<': setSpeed(-1); return true;
        case '>': setSpeed(1); return true;
        case ',': if (kind !== 'video') return false; step(-1); return true;
        case '.': if (kind !== 'video') return false; step(1); return true;
        default: return false;
      }
    },
    hints: [['K', 'play / pause'], ['J / L', 'back / forward 5 seconds'], ['< / >', 'slower / faster'],
      ...(kind === 'video' ? [[', / .', 'previous / next frame (pauses)']] : []),
      ['T', 'insert the current time into the note']],
  };
}

// A PDF: one page at a time, as a PNG the server renders (zoom and pan as for images).
function createPdfViewer(url, pages, { onFailed }) {
  const count = Number.isInteger(pages) && pages > 0 ? pages : null;
  let page = 1;
  const img = h('img', { class: 'pdf-page', alt: 'PDF page 1', draggable: 'false', 'data-testid': 'pdf-page' });
  const viewport = createViewport(img, { label: 'PDF page' });
  const where = h('output', { class: 'pdf-where', 'data-testid': 'pdf-where' });
  const problem = h('span', { class: 'muted small', role: 'status' });
  const prev = h('button', { type: 'button', class: 'small', onclick: () => go(page - 1) }, '◀ Previous ', h('kbd', {}, 'PgUp'));
  const next = h('button', { type: 'button', class: 'small', onclick: () => go(page + 1) }, 'Next ▶ ', h('kbd', {}, 'PgDn'));
  const el = h('div', { class: 'pdf-viewer' }, h('div', { class: 'player-tools', role: 'toolbar', 'aria-label': 'PDF pages' },
    prev, where, next, problem), viewport.el);
  let shown = 0; // the last page that loaded
  img.addEventListener('load', () => {
    shown = page;
    problem.textContent = '';
  });
  img.addEventListener('error', () => {
    if (!shown) {
      onFailed('PDF');
      return;
    }
    // Past the last page of a PDF whose page count the item does not carry.
    problem.textContent = `There is no page ${page}.`;
    page = shown;
    render();
  });
  function render() {
    where.textContent = count ? `Page ${page} of ${count}` : `Page ${page}`;
    prev.disabled = page <= 1;
    next.disabled = count !== null && page >= count;
    img.alt = `PDF page ${page}`;
    const src = `${url}?page=${page}`;
    if (img.getAttribute('src') !== src) img.src = src;
  }
  function go(n) {
    if (n < 1 || (count !== null && n > count)) return;
    page = n;
    render();
  }
  render();
  return {
    el,
    page: () => page,
    keydown(e) {
      if (e.key === 'PageDown') { go(page + 1); return true; }
      if (e.key === 'PageUp') { go(page - 1); return true; }
      return viewport.keydown(e);
    },
    hints: [['PgDn / PgUp', 'next / previous page'], ...viewport.hints],
  };
}

// A chat transcript (item data `messages`: [{role, content}]), turn by turn. Content is
// Markdown rendered to DOM nodes (markdown.js): HTML in a message stays visible text.
const ROLE_NAMES = { system: 'System', user: 'User', assistant: 'Assistant', tool: 'Tool' };

function createChat(messages) {
  const turns = messages.map((m, i) => {
    const role = ROLE_NAMES[m.role] ? m.role : 'user';
    const who = m.name ? `${ROLE_NAMES[role]} · ${m.name}` : ROLE_NAMES[role];
    return h('article', { class: `turn role-${role}`, dataset: { turn: String(i) }, 'aria-label': `turn ${i + 1}: ${who}` },
      h('div', { class: 'turn-head' }, h('b', {}, who), h('span', { class: 'muted small' }, ` turn ${i + 1}`)),
      h('div', { class: 'markdown turn-body' }, renderMarkdown(String(m.content ?? ''))),
      h('div', { class: 'turn-questions' }));
  });
  const el = h('div', { class: 'chat', 'data-testid': 'chat' }, turns);
  return {
    el,
    // The element a question about turn `index` goes in (negative: from the end), or null.
    slot(index) {
      const i = index < 0 ? turns.length + index : index;
      return i >= 0 && i < turns.length ? turns[i].querySelector('.turn-questions') : null;
    },
    keydown: () => false,
    hints: [],
  };
}

// The viewer for item data field `key`, or null when the field is not media (shown as text).
export function createMediaView(key, value, data, { onFailed }) {
  if (key === 'messages' && Array.isArray(value)) return createChat(value);
  if (typeof value !== 'string') return null;
  if (key === 'audio' || key === 'video') {
    if (mediaSourceProblem(value)) return unusable(`This item's ${key} source cannot be played here (${mediaSourceProblem(value)}).`, onFailed, key);
    const fps = Number(data.fps) > 0 && Number(data.fps) <= 240 ? Number(data.fps) : 25;
    return createPlayer(key, value.trim(), { fps, onFailed });
  }
  if (key === 'pdf') {
    if (!MEDIA_PDF_PATH.test(value.trim())) return unusable('A PDF is shown from the media store only (import the file).', onFailed, 'PDF');
    return createPdfViewer(value.trim(), data.pages, { onFailed });
  }
  return null;
}

// The item's own image (no drawing on it).
export function createItemImage(key, value, onFailed) {
  const url = safeImageUrl(value);
  if (!url) return null;
  const viewer = createImageViewer(url, { alt: key, onFailed });
  return { el: viewer.el, keydown: (e) => viewer.keydown(e), hints: viewer.hints };
}
