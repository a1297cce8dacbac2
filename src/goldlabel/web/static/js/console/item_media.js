// The item page's audio, video, PDF and chat fields, shown by the annotate workspace's own
// viewers (media.js): the same players, page view and turn-by-turn transcript, under the
// same CSP (media from our media route only, a PDF page as a PNG the server renders, message
// text as text). The page's data comes from the review-data block the server wrote.

import { h, isTyping } from '../dom.js';
import { createMediaView } from '../media.js';

const source = document.getElementById('review-data');
const data = source ? (JSON.parse(source.textContent).data || {}) : {};

for (const slot of document.querySelectorAll('[data-media-field]')) {
  const key = slot.dataset.mediaField;
  const note = h('p', { class: 'alert warn small', role: 'status', hidden: true, 'data-testid': 'media-failed' });
  const viewer = createMediaView(key, data[key], data, {
    onFailed: (what) => {
      note.textContent = `The ${what} of this item could not be loaded: check its source.`;
      note.hidden = false;
    },
  });
  if (!viewer) continue;
  slot.replaceChildren(viewer.el, note);
  // The viewer's keys (K play, J / L seek, PgDn next page...) while the focus is in it.
  slot.addEventListener('keydown', (e) => {
    if (!isTyping(e) && viewer.keydown(e)) e.preventDefault();
  });
}
