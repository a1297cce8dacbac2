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

// Two-factor login: start (a secret shown once), confirm with a first code (recovery codes shown
// once), or turn off with a current code.
const totpErrors = $('totp-errors');

async function totpCall(path, body) {
  hideError(totpErrors);
  try {
    return await api(`/users/${config.id}/totp${path}`, { method: 'POST', body });
  } catch (e) {
    showError(totpErrors, e);
    return null;
  }
}

const startButton = document.getElementById('totp-start');
if (startButton) {
  startButton.addEventListener('click', async () => {
    const enrolment = await totpCall('', undefined);
    if (!enrolment) return;
    $('totp-secret').textContent = enrolment.secret.replace(/(.{4})/g, '$1 ').trim();
    $('totp-uri').href = enrolment.otpauth_uri;
    $('totp-enrol').hidden = false;
    startButton.hidden = true;
    $('totp-confirm-form').elements.code.focus();
  });
  const confirmForm = $('totp-confirm-form');
  confirmForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const result = await totpCall('/confirm', { code: confirmForm.elements.code.value.trim() });
    if (!result) return;
    const list = $('totp-recovery-codes');
    list.replaceChildren(...result.recovery_codes.map((code) => {
      const li = document.createElement('li');
      li.textContent = code;
      return li;
    }));
    $('totp-enrol').hidden = true;
    $('totp-recovery').hidden = false;
    done('Two-factor login is on.');
  });
}

const disableForm = document.getElementById('totp-disable-form');
if (disableForm) {
  disableForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (await totpCall('/disable', { code: disableForm.elements.code.value.trim() })) {
      window.location.reload();
    }
  });
}
