// SPDX-License-Identifier: GPL-3.0-or-later
// Checks a librechat.yaml the way LibreChat loads it: js-yaml, then
// LibreChat's own schema from librechat-data-provider, strict at the top
// level (configSchema.strict().safeParse, as LibreChat's loadCustomConfig).
// Run by the librechat role inside the LibreChat image, whose working
// directory (/app) resolves the package:
//   docker run --rm --network none --user 0 --entrypoint node \
//     -v THIS:/parrotpark-check/check.js:ro -v FILE:/parrotpark-check/librechat.yaml:ro \
//     IMAGE /parrotpark-check/check.js /parrotpark-check/librechat.yaml
// Exit status 0 when the file is valid; 1 with one line per problem, each
// naming the path in the file ("endpoints.custom[0].baseURL: Expected
// string, received number"), when it is not.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { createRequire } = require('node:module');

const file = process.argv[2];
let appRequire;
let providerPath;
try {
  appRequire = createRequire(`${process.cwd()}/`);
  providerPath = appRequire.resolve('librechat-data-provider');
} catch (error) {
  process.stderr.write(
    `librechat-data-provider cannot be resolved from ${process.cwd()} in this image: ${error.message}\n`,
  );
  process.exit(2);
}
const { configSchema, Constants } = appRequire('librechat-data-provider');
const yaml = createRequire(providerPath)('js-yaml');

let version = 'unknown';
try {
  version = JSON.parse(fs.readFileSync(path.join(path.dirname(providerPath), '..', 'package.json'), 'utf8')).version;
} catch {
  // the version is only reported
}

function formatPath(parts) {
  let out = '';
  for (const part of parts) {
    out += typeof part === 'number' ? `[${part}]` : `${out ? '.' : ''}${part}`;
  }
  return out || '(top level)';
}

let data;
try {
  data = yaml.load(fs.readFileSync(file, 'utf8'));
} catch (error) {
  process.stderr.write(`librechat.yaml is not valid YAML: ${error.message}\n`);
  process.exit(1);
}
const result = configSchema.strict().safeParse(data);
if (!result.success) {
  const problems = result.error.issues.map((issue) => `${formatPath(issue.path)}: ${issue.message}`);
  process.stderr.write(
    `librechat.yaml does not match LibreChat's configuration schema (librechat-data-provider ${version}): ` +
      `${problems.join('; ')}\n`,
  );
  process.exit(1);
}
const current = (Constants || {}).CONFIG_VERSION;
process.stdout.write(
  `librechat.yaml matches LibreChat's configuration schema (librechat-data-provider ${version}` +
    `${current && current !== data.version ? `; its config version is ${current}, the file says ${data.version}` : ''})\n`,
);
