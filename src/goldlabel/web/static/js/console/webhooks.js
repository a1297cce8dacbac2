// Webhooks: subscribe (the secret is shown once, here), pause, resume, delete, and re-send a
// delivery from the log. Every change is a call to /api/v1 with the session and CSRF header.

import { api } from '../api.js';
import { clear, h } from '../dom.js';
import { $, flash, hideError, readJson, showError } from './common.js';

const { project_id: pid } = readJson('webhooks-data');

const form = $('webhook-form');
form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const box = $('webhook-form-errors');
  hideError(box);
  const types = [...form.querySelectorAll('input[name="event_types"]:checked')].map((i) => i.value);
  try {
    const hook = await api(`/projects/${pid}/webhooks`, { method: 'POST',
      body: { url: form.elements.url.value.trim(), event_types: types } });
    const shown = clear($('webhook-secret'));
    shown.hidden = false;
    shown.append(h('p', { class: 'strong' }, 'Copy this signing secret now: it is shown only once.'),
      h('code', { class: 'secret', 'data-testid': 'webhook-secret' }, hook.secret));
    form.reset();
  } catch (e) {
    showError(box, e);
  }
});

function onClick(selector, action) {
  for (const button of document.querySelectorAll(selector)) {
    button.addEventListener('click', async () => {
      try {
        await action(button);
      } catch (e) {
        showError($('webhook-errors'), e);
      }
    });
  }
}

onClick('[data-active]', async (b) => {
  await api(`/projects/${pid}/webhooks/${b.dataset.hook}`, { method: 'PATCH',
    body: { is_active: b.dataset.active === 'true' } });
  window.location.reload();
});

onClick('[data-delete-hook]', async (b) => {
  if (!window.confirm('Delete this subscription and its delivery log?')) return;
  await api(`/projects/${pid}/webhooks/${b.dataset.deleteHook}`, { method: 'DELETE' });
  window.location.assign(window.location.pathname);
});

onClick('[data-resend]', async (b) => {
  await api(`/projects/${pid}/webhooks/${b.dataset.hookId}/deliveries/${b.dataset.resend}/resend`,
    { method: 'POST' });
  b.disabled = true;
  flash('Queued: a worker sends it again within seconds.');
});
