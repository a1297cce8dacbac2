// A small, safe Markdown renderer: it builds DOM nodes from the source and never parses HTML.
// Raw HTML in the source stays visible text; links keep only http(s), mailto and same-site
// targets, anything else (javascript:, data:, vbscript:) renders as plain text.
//
// Blocks: paragraphs, # headings, - / 1. lists, > quotes, ``` fences, --- rules.
// Inline: `code`, **bold**, *italic* / _italic_, ~~strike~~, [text](url), <https://autolinks>.

import { h } from './dom.js';

export function renderMarkdown(source) {
  const fragment = document.createDocumentFragment();
  const lines = String(source ?? '').replace(/\r\n?/g, '\n').split('\n');
  renderBlocks(lines, fragment, 0);
  return fragment;
}

const FENCE = /^\s{0,3}(```|~~~)/;
const HEADING = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const RULE = /^\s{0,3}([-*_])(\s*\1){2,}\s*$/;
const QUOTE = /^\s{0,3}>\s?(.*)$/;
const BULLET = /^\s{0,3}[-*+]\s+(.*)$/;
const ORDERED = /^\s{0,3}(\d{1,9})[.)]\s+(.*)$/;

function renderBlocks(lines, parent, depth) {
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) {
      i++;
      continue;
    }
    let m;
    if ((m = FENCE.exec(line))) {
      const fence = m[1];
      const body = [];
      i++;
      while (i < lines.length && !lines[i].trim().startsWith(fence)) body.push(lines[i++]);
      i++; // the closing fence (or the end)
      parent.appendChild(h('pre', {}, h('code', {}, body.join('\n'))));
    } else if ((m = HEADING.exec(line))) {
      parent.appendChild(h(`h${Math.min(6, m[1].length + 2)}`, {}, renderInline(m[2])));
      i++;
    } else if (RULE.test(line)) {
      parent.appendChild(h('hr'));
      i++;
    } else if (QUOTE.test(line) && depth < 8) {
      const body = [];
      while (i < lines.length && (m = QUOTE.exec(lines[i]))) {
        body.push(m[1]);
        i++;
      }
      const quote = h('blockquote');
      renderBlocks(body, quote, depth + 1);
      parent.appendChild(quote);
    } else if (BULLET.test(line) || ORDERED.test(line)) {
      const ordered = !BULLET.test(line);
      const pattern = ordered ? ORDERED : BULLET;
      const list = h(ordered ? 'ol' : 'ul');
      if (ordered) {
        const start = Number(ORDERED.exec(line)[1]);
        if (start !== 1) list.setAttribute('start', String(start));
      }
      let current = null;
      while (i < lines.length && lines[i].trim()) {
        m = pattern.exec(lines[i]);
        if (m) {
          current = [ordered ? m[2] : m[1]];
          list.appendChild(h('li'));
          list.lastChild.appendChild(renderInline(current[0]));
        } else if (current && /^\s+/.test(lines[i])) {
          list.lastChild.appendChild(document.createTextNode(' '));
          list.lastChild.appendChild(renderInline(lines[i].trim()));
        } else {
          break;
        }
        i++;
      }
      parent.appendChild(list);
    } else {
      const body = [];
      while (i < lines.length && lines[i].trim() && !startsBlock(lines[i])) body.push(lines[i++].trim());
      const paragraph = h('p');
      body.forEach((text, k) => {
        if (k) paragraph.appendChild(h('br'));
        paragraph.appendChild(renderInline(text));
      });
      parent.appendChild(paragraph);
    }
  }
}

function startsBlock(line) {
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) ||
    BULLET.test(line) || ORDERED.test(line);
}

// Inline patterns, tried at every position; the earliest match wins.
const INLINE = [
  { re: /`([^`]+)`/, build: (m) => h('code', {}, m[1]) },
  { re: /!\[([^\]]*)\]\(([^)\s]*)(?:\s+"[^"]*")?\)/, build: (m) => link(m[2], m[1] || m[2]) },
  { re: /\[([^\]]+)\]\(([^)\s]*)(?:\s+"[^"]*")?\)/, build: (m) => link(m[2], m[1]) },
  { re: /<(https?:\/\/[^\s>]+)>/, build: (m) => link(m[1], m[1]) },
  { re: /\*\*(?=\S)([\s\S]*?\S)\*\*/, build: (m) => h('strong', {}, renderInline(m[1])) },
  { re: /__(?=\S)([\s\S]*?\S)__/, build: (m) => h('strong', {}, renderInline(m[1])) },
  { re: /~~(?=\S)([\s\S]*?\S)~~/, build: (m) => h('del', {}, renderInline(m[1])) },
  { re: /\*(?=\S)([^*]*?\S)\*/, build: (m) => h('em', {}, renderInline(m[1])) },
  { re: /(?<![\w])_(?=\S)([^_]*?\S)_(?![\w])/, build: (m) => h('em', {}, renderInline(m[1])) },
];

export function renderInline(text) {
  const fragment = document.createDocumentFragment();
  let rest = text;
  while (rest) {
    let best = null;
    for (const rule of INLINE) {
      const m = rule.re.exec(rest);
      if (m && (best === null || m.index < best.m.index)) best = { m, rule };
    }
    if (!best) {
      fragment.appendChild(document.createTextNode(rest));
      break;
    }
    if (best.m.index) fragment.appendChild(document.createTextNode(rest.slice(0, best.m.index)));
    fragment.appendChild(best.rule.build(best.m));
    rest = rest.slice(best.m.index + best.m[0].length);
  }
  return fragment;
}

// Only these link targets become links; everything else is shown as text.
export function safeLinkUrl(raw) {
  // Browsers ignore control characters and whitespace inside a scheme ("java\tscript:").
  const url = String(raw).replace(/[\u0000-\u0020\u007f-\u009f]/g, '');
  if (!url) return null;
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url);
  if (scheme) return ['http', 'https', 'mailto'].includes(scheme[1].toLowerCase()) ? url : null;
  if (/^[\\/]{2}/.test(url)) return null; // protocol-relative: another site
  if (url.includes(':') && !/^[/?#.]/.test(url)) return null; // "foo:bar" could be a scheme
  return url;
}

function link(rawUrl, label) {
  const url = safeLinkUrl(rawUrl);
  if (url === null) return document.createTextNode(label);
  return h('a', { href: url, target: '_blank', rel: 'noopener noreferrer nofollow' }, renderInline(label));
}
