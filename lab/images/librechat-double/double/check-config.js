// SPDX-License-Identifier: GPL-3.0-or-later
// librechat-double: the configuration check the double runs at start. It is
// the same check the librechat role runs before it installs librechat.yaml
// (roles/librechat/files/check-librechat-yaml.js): js-yaml, then
// LibreChat's own schema from librechat-data-provider, strict at the top
// level as LibreChat's loadCustomConfig does.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { createRequire } = require('node:module');

// Resolved from the working directory (/app), as in the official image, where
// the package is a workspace of the LibreChat monorepo.
const appRequire = createRequire(`${process.cwd()}/`);
const providerPath = appRequire.resolve('librechat-data-provider');
const provider = appRequire('librechat-data-provider');
const yaml = createRequire(providerPath)('js-yaml');

// The package's exports hide package.json: read it next to dist/.
function providerVersion() {
  try {
    const file = path.join(path.dirname(providerPath), '..', 'package.json');
    return JSON.parse(fs.readFileSync(file, 'utf8')).version;
  } catch {
    return 'unknown';
  }
}

// ["endpoints", "custom", 0, "baseURL"] -> "endpoints.custom[0].baseURL"
function formatPath(path) {
  let out = '';
  for (const part of path) {
    out += typeof part === 'number' ? `[${part}]` : `${out ? '.' : ''}${part}`;
  }
  return out || '(top level)';
}

function checkConfigFile(file) {
  const text = fs.readFileSync(file, 'utf8');
  let data;
  try {
    data = yaml.load(text);
  } catch (error) {
    return { valid: false, errors: [`YAML: ${error.message}`] };
  }
  const result = provider.configSchema.strict().safeParse(data);
  if (!result.success) {
    return {
      valid: false,
      errors: result.error.issues.map((issue) => `${formatPath(issue.path)}: ${issue.message}`),
    };
  }
  return { valid: true, errors: [], config: data };
}

module.exports = {
  provider,
  checkConfigFile,
  formatPath,
  providerVersion,
  configVersion: (provider.Constants || {}).CONFIG_VERSION || 'unknown',
};
