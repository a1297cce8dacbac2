// Building DOM safely: text is always set as text (never parsed as HTML), so item data,
// labels and instructions cannot inject markup. No module of the UI uses innerHTML.

// h('button', {class: 'primary', onclick: fn, dataset: {id: 1}}, 'Save', childNode, [more])
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (key === 'class') {
      el.className = value;
    } else if (key === 'text') {
      el.textContent = value;
    } else if (key === 'style' || key === 'innerHTML' || key === 'srcdoc') {
      throw new Error(`h(): ${key} is not allowed`); // CSP forbids inline styles; never parse HTML
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// Is the key event typed into a field (where letters and Enter mean text, not shortcuts)?
export function isTyping(event) {
  const t = event.target;
  if (!(t instanceof Element)) return false;
  if (t.isContentEditable) return true;
  if (t.tagName === 'TEXTAREA' || t.tagName === 'SELECT') return true;
  if (t.tagName === 'INPUT') return !['button', 'checkbox', 'radio', 'range', 'submit'].includes(t.type);
  return false;
}

// The digit 1-9 a key event stands for, or 0 when it is not one.
export function digitOf(event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return 0;
  return /^[1-9]$/.test(event.key) ? Number(event.key) : 0;
}

// Which image sources an item may name: the same rule as goldlabel.domain.media_sources
// (imports refuse what this refuses; tests/browser/test_image_sources.py keeps both in step).
const MEDIA_PATH = /^\/api\/v1\/projects\/[0-9]+\/media\/[0-9a-f]{64}\.[a-z0-9]{1,8}$/;
const DATA_IMAGE = /^data:image\/(png|jpeg|gif|webp|svg\+xml);base64,[A-Za-z0-9+/=\s]*$/i;
const HTTPS = /^https:\/\/[^/?#\s\\]+/i;
const HTTP_HOST = /^http:\/\/([^/?#\s\\@]+)(?:[/?#]|$)/i;
let imageHosts = []; // the media_http_hosts setting, given by the page (setImageHosts)

export function setImageHosts(hosts) {
  imageHosts = (hosts || []).map((h) => String(h).trim().toLowerCase()).filter(Boolean);
}

// null when the workspace may show `value` as an image, else the error code import would give.
export function imageSourceProblem(value, hosts = imageHosts) {
  if (typeof value !== 'string') return 'not_a_string';
  const url = value.trim();
  if (MEDIA_PATH.test(url) || HTTPS.test(url)) return null;
  const lower = url.toLowerCase();
  if (lower.startsWith('data:')) return DATA_IMAGE.test(url) ? null : 'bad_data_uri';
  if (lower.startsWith('http://')) {
    const m = HTTP_HOST.exec(url);
    const host = m ? m[1].toLowerCase().replace(/:[0-9]*$/, '') : '';
    return host && hosts.map((h) => h.toLowerCase()).includes(host) ? null : 'http_host_not_allowed';
  }
  if (url.startsWith('/') && !url.startsWith('//')) return 'bad_media_path';
  return 'unsupported_scheme';
}

// An image URL that is safe to put in <img src>, or null (see imageSourceProblem).
export function safeImageUrl(value, hosts = imageHosts) {
  return imageSourceProblem(value, hosts) ? null : value.trim();
}

// Audio and video sources: the image rule without data: URIs (the page's CSP plays media from
// our own origin and https only).
export function mediaSourceProblem(value, hosts = imageHosts) {
  const problem = imageSourceProblem(value, hosts);
  if (problem) return problem;
  return value.trim().toLowerCase().startsWith('data:') ? 'bad_data_uri' : null;
}

export function formatDuration(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, '0')}`;
}
