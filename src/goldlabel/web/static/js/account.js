// Your account: change your display name and your password (PATCH /api/v1/users/{id}).

import { api } from './api.js';
import { $, hideError, readJson, showError } from './console/common.js';

const config = readJson('account-data');

function done(message) {
  const box = $('account-flash');
  box.textContent = message;
  box.hidden = false;
}

async function save(box, changes) {
  hideError(box);
  $('account-flash').hidden = true;
  try {
    await api(`/users/${config.id}`, { method: 'PATCH', body: changes });
    return true;
  } catch (e) {
    showError(box, e);
    return false;
  }
}

const nameForm = $('name-form');
nameForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  if (await save($('name-errors'), { display_name: nameForm.elements.display_name.value.trim() })) {
    done('Display name saved.');
  }
});

const passwordForm = $('password-form');
passwordForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const { password, confirm } = passwordForm.elements;
  const box = $('password-errors');
  // Checked here too, so a typo is caught before anything is sent.
  if (password.value.length < 8) {
    showError(box, new Error('The new password must have at least 8 characters.'));
    return;
  }
  if (password.value !== confirm.value) {
    showError(box, new Error('The two passwords differ: type the same password twice.'));
    return;
  }
  if (await save(box, { password: password.value })) {
    passwordForm.reset();
    done('Password changed. Other browsers signed in as you have been signed out.');
  }
});
