// Models: train a new version now, turn auto-labeling on or off. Every change is a call to
// /api/v1 with the session and CSRF header; the page reloads to show the result.

import { api } from '../api.js';
import { $, flash, readJson, showError } from './common.js';

const { project_id: pid } = readJson('models-data');

function onClick(id, action) {
  const button = $(id);
  if (!button) return;
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      await action(button);
    } catch (e) {
      showError($('models-errors'), e);
      button.disabled = false;
    }
  });
}

onClick('train-model', async () => {
  flash('Training: embedding the labeled items and fitting the model…');
  const out = await api(`/projects/${pid}/models/train`, { method: 'POST' });
  if (out.queued) flash('The model worker is busy with this project: it trains next.');
  window.location.reload();
});

onClick('toggle-auto-label', async (b) => {
  await api(`/projects/${pid}/models/settings`, { method: 'PATCH',
    body: { auto_label: b.dataset.on !== 'true' } });
  window.location.reload();
});

for (const button of document.querySelectorAll('[data-send-review]')) {
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      const out = await api(`/projects/${pid}/models/audit/review`, { method: 'POST',
        body: { item_ids: [Number(button.dataset.sendReview)] } });
      flash(out.sent.length ? 'Sent to review.' : 'Not sent: its label is a reviewer\'s, gold or the model\'s.');
      window.location.reload();
    } catch (e) {
      showError($('models-errors'), e);
      button.disabled = false;
    }
  });
}
