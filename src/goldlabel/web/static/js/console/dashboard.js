// Dashboard actions: suspend or reinstate an annotator, re-fit the skills now.

import { api } from '../api.js';
import { $, readJson, showError } from './common.js';

const config = readJson('dashboard-data');
const errors = $('dashboard-errors');

for (const button of document.querySelectorAll('[data-annotator-id]')) {
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      await api(`/projects/${config.project_id}/annotators/${button.dataset.annotatorId}`,
        { method: 'PATCH', body: { status: button.dataset.status } });
      window.location.reload();
    } catch (e) {
      showError(errors, e);
      button.disabled = false;
    }
  });
}

const refit = $('refit-button');
if (refit) {
  refit.addEventListener('click', async () => {
    refit.disabled = true;
    try {
      await api(`/projects/${config.project_id}/refit`, { method: 'POST' });
      window.location.reload();
    } catch (e) {
      showError(errors, e);
      refit.disabled = false;
    }
  });
}
