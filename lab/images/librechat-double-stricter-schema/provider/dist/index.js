// SPDX-License-Identifier: GPL-3.0-or-later
// librechat-double-stricter-schema: LibreChat's schema package as a later
// release might ship it. Everything is librechat-data-provider 0.8.524's,
// except that configSchema no longer knows the top-level key `cache`, so a
// strict parse (LibreChat's loadCustomConfig, the role's check, the double's
// start-up check) rejects a librechat.yaml that sets it.
'use strict';

const base = require('../../librechat-data-provider-0.8.524');

module.exports = { ...base, configSchema: base.configSchema.omit({ cache: true }) };
