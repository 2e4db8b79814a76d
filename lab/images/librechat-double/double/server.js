// SPDX-License-Identifier: GPL-3.0-or-later
// librechat-double: a TEST DOUBLE of LibreChat's api server
// (ghcr.io/danny-avila/librechat), which cannot be obtained here. It is not
// LibreChat and says so in every answer (header x-parrotpark-double:
// librechat). At start it does what the librechat role relies on LibreChat
// doing, and fails the way LibreChat would (exit status 1, a clear message):
//   - validates CONFIG_PATH (default /app/librechat.yaml) with LibreChat's own
//     schema (librechat-data-provider), strict at the top level, and checks
//     that every ${VAR} the file refers to is set;
//   - checks the environment LibreChat needs (CREDS_KEY 64 hex digits,
//     CREDS_IV 32, JWT_SECRET, JWT_REFRESH_SECRET, DOMAIN_CLIENT,
//     DOMAIN_SERVER, MONGO_URI; the AWS_* variables when fileStrategy is s3);
//   - pings MONGO_URI over MongoDB's wire protocol;
//   - with fileStrategy s3, writes and reads back an upload in the bucket with
//     the AWS SDK as LibreChat does (s3-probe.js; a failure is reported, not
//     fatal: LibreChat starts and fails at the first upload);
//   - when OpenID is configured (OPENID_CLIENT_ID, OPENID_CLIENT_SECRET,
//     OPENID_ISSUER, OPENID_SESSION_SECRET), fetches
//     <OPENID_ISSUER>/.well-known/openid-configuration and requires the
//     document's issuer to equal OPENID_ISSUER; then asks the authorization
//     endpoint whether it accepts the client and the callback URL.
// Then it serves GET /health ("OK"), GET /api/config (LibreChat's startup
// configuration fields, with `modelSpecs` and `interface` as LibreChat
// derives them from the file, plus a `double` report of every check above
// and of whether a plain chat on the default model spec offers File Search),
// GET /api/models (the models each custom endpoint offers: models.default,
// or with models.fetch the list its baseURL answers at start, as LibreChat)
// and GET /oauth/openid (a redirect to the provider's login, like LibreChat).
// Retries: DOUBLE_START_RETRIES (default 30) x DOUBLE_START_DELAY_MS (2000).
'use strict';

const http = require('node:http');
const fs = require('node:fs');
const { provider, checkConfigFile, providerVersion, configVersion } = require('./check-config');
const { pingMongo, redact } = require('./mongo-ping');
const { probeS3 } = require('./s3-probe');

const DOUBLE = 'librechat';
const env = process.env;
const retries = Number(env.DOUBLE_START_RETRIES || 30);
const delayMs = Number(env.DOUBLE_START_DELAY_MS || 2000);
const port = Number(env.PORT || 3080);
const host = env.HOST || '0.0.0.0';
const configPath = env.CONFIG_PATH || '/app/librechat.yaml';

const report = {
  double: 'librechat-double: a test double of LibreChat, not LibreChat',
  schemaPackage: `librechat-data-provider@${providerVersion()}`,
  schemaConfigVersion: configVersion,
  config: null,
  environment: null,
  mongo: null,
  s3: null,
  openid: null,
  ragApi: null,
  models: null,
  startedAt: null,
};

function log(message) {
  process.stdout.write(`[librechat-double] ${message}\n`);
}

function fail(message) {
  process.stderr.write(`[librechat-double] FATAL: ${message}\n`);
  process.exit(1);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function withRetries(what, attempt) {
  let lastError;
  for (let round = 1; round <= retries; round += 1) {
    try {
      return await attempt();
    } catch (error) {
      lastError = error;
      log(`${what}: attempt ${round}/${retries} failed: ${error.message}`);
      if (round < retries) {
        await sleep(delayMs);
      }
    }
  }
  throw new Error(`${what} failed after ${retries} attempts: ${lastError.message}`);
}

const truthy = (value) => String(value || '').toLowerCase() === 'true';

// --- configuration ------------------------------------------------------------

function envReferences(value, found = new Set()) {
  if (typeof value === 'string') {
    for (const match of value.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)) {
      found.add(match[1]);
    }
  } else if (Array.isArray(value)) {
    value.forEach((item) => envReferences(item, found));
  } else if (value && typeof value === 'object') {
    Object.values(value).forEach((item) => envReferences(item, found));
  }
  return found;
}

function checkConfig() {
  if (!fs.existsSync(configPath)) {
    log(`no configuration file at ${configPath}: LibreChat would run with its defaults`);
    return { path: configPath, found: false, validated: false };
  }
  const result = checkConfigFile(configPath);
  if (!result.valid) {
    fail(
      `${configPath} does not match LibreChat's configuration schema (${report.schemaPackage}):\n  ` +
        result.errors.join('\n  '),
    );
  }
  const config = result.config;
  const references = [...envReferences(config)].sort();
  const missing = references.filter((name) => !env[name]);
  if (missing.length > 0) {
    fail(`${configPath} refers to environment variables that are not set: ${missing.join(', ')}`);
  }
  const custom = ((config.endpoints || {}).custom || []).map((endpoint) => ({
    name: endpoint.name,
    baseURL: endpoint.baseURL,
    apiKey: /^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/.test(endpoint.apiKey || '')
      ? `${endpoint.apiKey} (set)`
      : endpoint.apiKey === 'user_provided'
        ? 'user_provided'
        : '(literal, hidden)',
    models: endpoint.models,
    titleConvo: endpoint.titleConvo,
    titleModel: endpoint.titleModel,
    headers: endpoint.headers || {},
    modelDisplayLabel: endpoint.modelDisplayLabel,
  }));
  if (config.version !== configVersion) {
    log(`librechat.yaml has version ${config.version}; the schema's current version is ${configVersion}`);
  }
  return {
    path: configPath,
    found: true,
    validated: true,
    version: config.version,
    fileStrategy: config.fileStrategy || 'local',
    registration: config.registration || {},
    interface: config.interface || {},
    customEndpoints: custom,
    envReferences: references,
    raw: config,
  };
}

// --- environment ---------------------------------------------------------------

function checkEnvironment(config) {
  const problems = [];
  const hex = (name, digits) => {
    if (!new RegExp(`^[0-9a-fA-F]{${digits}}$`).test(env[name] || '')) {
      problems.push(`${name} must be ${digits} hexadecimal digits (has ${(env[name] || '').length} characters)`);
    }
  };
  hex('CREDS_KEY', 64);
  hex('CREDS_IV', 32);
  for (const name of ['JWT_SECRET', 'JWT_REFRESH_SECRET']) {
    if ((env[name] || '').length < 32) {
      problems.push(`${name} must be set (at least 32 characters; has ${(env[name] || '').length})`);
    }
  }
  for (const name of ['DOMAIN_CLIENT', 'DOMAIN_SERVER']) {
    if (!/^https?:\/\/[^/\s]+/.test(env[name] || '')) {
      problems.push(`${name} must be the public URL of LibreChat (got ${JSON.stringify(env[name] || '')})`);
    }
  }
  if (!env.MONGO_URI) {
    problems.push('MONGO_URI must be set');
  }
  const strategy = (config && config.fileStrategy) || 'local';
  const s3 = ['AWS_BUCKET_NAME', 'AWS_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'];
  if (strategy === 's3') {
    for (const name of s3) {
      if (!env[name]) {
        problems.push(`${name} must be set when fileStrategy is s3`);
      }
    }
  }
  if (problems.length > 0) {
    fail(`the environment is not what LibreChat needs:\n  ${problems.join('\n  ')}`);
  }
  return {
    checked: true,
    credsKeyHexDigits: env.CREDS_KEY.length,
    credsIvHexDigits: env.CREDS_IV.length,
    jwtSecretsSet: true,
    domainClient: env.DOMAIN_CLIENT,
    domainServer: env.DOMAIN_SERVER,
    allowRegistration: truthy(env.ALLOW_REGISTRATION),
    allowEmailLogin: env.ALLOW_EMAIL_LOGIN === undefined ? true : truthy(env.ALLOW_EMAIL_LOGIN),
    allowSocialLogin: truthy(env.ALLOW_SOCIAL_LOGIN),
    allowSocialRegistration: truthy(env.ALLOW_SOCIAL_REGISTRATION),
    fileStrategy: strategy,
    s3:
      strategy === 's3'
        ? {
            bucket: env.AWS_BUCKET_NAME,
            region: env.AWS_REGION,
            endpoint: env.AWS_ENDPOINT_URL || null,
            accessKeyIdSet: true,
            secretAccessKeySet: true,
          }
        : null,
    ragApiUrl: env.RAG_API_URL || null,
  };
}

// --- S3 (fileStrategy s3) ---------------------------------------------------------

async function checkS3() {
  const where = `s3://${env.AWS_BUCKET_NAME} at ${env.AWS_ENDPOINT_URL || 'AWS'}`;
  try {
    const probe = await probeS3(env);
    log(`S3: wrote and read back ${probe.key} in ${where}`);
    return probe;
  } catch (error) {
    log(`S3: uploads to ${where} would fail: ${error.message}`);
    return { ok: false, error: error.message };
  }
}

// --- OpenID -------------------------------------------------------------------------

async function fetchJson(url) {
  const response = await fetch(url, { signal: AbortSignal.timeout(10000), redirect: 'manual' });
  if (response.status !== 200) {
    throw new Error(`${url} answered HTTP ${response.status}`);
  }
  return response.json();
}

function callbackUrl() {
  const callback = env.OPENID_CALLBACK_URL || '/oauth/openid/callback';
  return `${(env.DOMAIN_SERVER || '').replace(/\/$/, '')}${callback}`;
}

function authorizationUrl(discovery, state) {
  const url = new URL(discovery.authorization_endpoint);
  url.searchParams.set('client_id', env.OPENID_CLIENT_ID);
  url.searchParams.set('redirect_uri', callbackUrl());
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('scope', env.OPENID_SCOPE || 'openid profile email');
  url.searchParams.set('state', state);
  return url.toString();
}

async function checkOpenId() {
  const needed = ['OPENID_CLIENT_ID', 'OPENID_CLIENT_SECRET', 'OPENID_ISSUER', 'OPENID_SESSION_SECRET'];
  const missing = needed.filter((name) => !env[name]);
  if (missing.length === needed.length) {
    return { enabled: false };
  }
  if (missing.length > 0) {
    fail(`OpenID is half configured: ${missing.join(', ')} not set (LibreChat needs all of ${needed.join(', ')})`);
  }
  const issuer = env.OPENID_ISSUER.replace(/\/$/, '');
  const discoveryUrl = `${issuer}/.well-known/openid-configuration`;
  let discovery;
  try {
    discovery = await withRetries(`OIDC discovery at ${discoveryUrl}`, () => fetchJson(discoveryUrl));
  } catch (error) {
    fail(`OpenID provider unreachable: ${error.message}`);
  }
  if ((discovery.issuer || '').replace(/\/$/, '') !== issuer) {
    fail(
      `OIDC discovery at ${discoveryUrl} names the issuer ${JSON.stringify(discovery.issuer)}, not OPENID_ISSUER ` +
        `${JSON.stringify(env.OPENID_ISSUER)}: tokens would be refused. Make OPENID_ISSUER the provider's public issuer URL.`,
    );
  }
  for (const field of ['authorization_endpoint', 'token_endpoint', 'jwks_uri']) {
    if (!discovery[field]) {
      fail(`OIDC discovery at ${discoveryUrl} has no ${field}`);
    }
  }
  // Does the provider accept this client and callback URL? Keycloak answers
  // its login page (200) when it does, and an error page (400) otherwise.
  const probe = authorizationUrl(discovery, 'parrotpark-double-probe');
  let authorization;
  try {
    const response = await fetch(probe, { signal: AbortSignal.timeout(10000), redirect: 'manual' });
    const body = await response.text();
    const error = /Invalid parameter: redirect_uri|Client not found|invalid_client|invalid_redirect_uri/i.exec(body);
    authorization = {
      status: response.status,
      accepted: response.status === 200 && !error,
      error: error ? error[0] : null,
    };
  } catch (error) {
    authorization = { status: null, accepted: false, error: error.message };
  }
  log(
    `OIDC discovery OK: issuer ${discovery.issuer}; client ${env.OPENID_CLIENT_ID} with ${callbackUrl()}: ` +
      `${authorization.accepted ? 'accepted' : `NOT accepted (${authorization.error || authorization.status})`}`,
  );
  return {
    enabled: true,
    discoveryUrl,
    issuer: discovery.issuer,
    authorizationEndpoint: discovery.authorization_endpoint,
    tokenEndpoint: discovery.token_endpoint,
    jwksUri: discovery.jwks_uri,
    clientId: env.OPENID_CLIENT_ID,
    callbackUrl: callbackUrl(),
    scope: env.OPENID_SCOPE || 'openid profile email',
    buttonLabel: env.OPENID_BUTTON_LABEL || null,
    requiredRole: env.OPENID_REQUIRED_ROLE || null,
    authorizationRequest: authorization,
    discovery,
  };
}

// --- RAG API (reported, never fatal: LibreChat only logs it) ----------------------

async function checkRagApi() {
  if (!env.RAG_API_URL) {
    return { configured: false };
  }
  const url = `${env.RAG_API_URL.replace(/\/$/, '')}/health`;
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
    return { configured: true, url, status: response.status, reachable: response.ok };
  } catch (error) {
    return { configured: true, url, status: null, reachable: false, error: error.message };
  }
}

// --- models and model specs, as LibreChat derives them from the file --------------------

const resolveEnv = (value) =>
  String(value || '').replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (whole, name) => env[name] || '');

// GET /api/models: a custom endpoint offers models.default, or with
// models.fetch the ids its baseURL's /models answers (models.default when
// that fails or is empty). Asked once, at start.
async function loadModels(config) {
  const models = {};
  const sources = {};
  for (const endpoint of (config.endpoints || {}).custom || []) {
    const defaults = (endpoint.models || {}).default || [];
    models[endpoint.name] = defaults;
    sources[endpoint.name] = { fetch: Boolean((endpoint.models || {}).fetch), source: 'models.default' };
    if (!sources[endpoint.name].fetch) {
      continue;
    }
    const url = `${resolveEnv(endpoint.baseURL).replace(/\/$/, '')}/models`;
    try {
      const response = await fetch(url, {
        headers: { authorization: `Bearer ${resolveEnv(endpoint.apiKey)}` },
        signal: AbortSignal.timeout(5000),
      });
      const body = response.ok ? await response.json() : null;
      const ids = body && Array.isArray(body.data) ? body.data.map((model) => model.id) : [];
      if (ids.length > 0) {
        models[endpoint.name] = ids;
        sources[endpoint.name].source = url;
      } else {
        sources[endpoint.name].error = `${url} answered HTTP ${response.status} without models`;
      }
    } catch (error) {
      sources[endpoint.name].error = `${url}: ${error.message}`;
    }
  }
  return { models, sources };
}

// modelSpecs as LibreChat keeps them: a spec whose preset names no endpoint,
// the generic "custom", or a custom endpoint the file does not define is
// skipped (LibreChat logs a warning); the others are served.
function modelSpecs(config) {
  const specs = config.modelSpecs;
  if (!specs || !Array.isArray(specs.list) || specs.list.length === 0) {
    return { served: undefined, skipped: [] };
  }
  const known = Object.values(provider.EModelEndpoint);
  const custom = ((config.endpoints || {}).custom || []).map((endpoint) => endpoint.name);
  const normalize = provider.normalizeEndpointName;
  const list = [];
  const skipped = [];
  for (const spec of specs.list) {
    const endpoint = (spec.preset || {}).endpoint;
    if (!endpoint || endpoint === 'custom') {
      skipped.push({ name: spec.name, reason: `endpoint ${JSON.stringify(endpoint || null)} is not usable` });
    } else if (known.includes(endpoint)) {
      list.push(spec);
    } else if (custom.some((name) => normalize(name) === normalize(endpoint))) {
      list.push({ ...spec, preset: { ...spec.preset, endpoint: normalize(endpoint) } });
    } else {
      skipped.push({ name: spec.name, reason: `no custom endpoint named ${JSON.stringify(endpoint)}` });
    }
  }
  for (const spec of skipped) {
    log(`model spec ${spec.name} skipped, as LibreChat would: ${spec.reason}`);
  }
  return { served: list.length > 0 ? { ...specs, list } : undefined, skipped };
}

// The interface LibreChat serves: with model specs, the endpoint menu
// (modelSelect), parameters and presets are off unless the file turns them
// on (modelSelect on by default when modelSpecs.addedEndpoints is set).
function interfaceConfig(config, hasSpecs) {
  const given = config.interface || {};
  const added = ((config.modelSpecs || {}).addedEndpoints || []).length > 0;
  return {
    ...given,
    modelSelect: given.modelSelect ?? (hasSpecs ? added : true),
    parameters: given.parameters ?? !hasSpecs,
    presets: given.presets ?? !hasSpecs,
  };
}

// File Search from the plain chat, as LibreChat decides it for a conversation
// that starts on the default model spec: the spec turns the tool on
// (fileSearch), so LibreChat runs the spec's model as an ephemeral agent
// with the file_search tool, to which an attached document is routed;
// users may use the tool (interface.fileSearch, on unless false);
// the agents endpoint has the capability (endpoints.agents.capabilities,
// LibreChat's defaultAgentCapabilities when unset); and RAG_API_URL names the
// RAG API that embeds and searches the documents. And the upload itself must
// reach something: a document routed to the provider would reach vLLM as a
// file part, which it refuses, and one routed to the tools only needs the
// text fallback for a turn without File Search. The double cannot show the
// menu itself (it has no client) nor run the agent; this is what it can read.
function fileSearchFromChat(config, specs) {
  const reasons = [];
  const list = (specs && specs.list) || [];
  const spec = list.find((candidate) => candidate.default) || list[0];
  if (!spec) {
    reasons.push('no model spec: a new conversation starts with no tool on');
  } else if (spec.fileSearch !== true) {
    reasons.push(`the default model spec ${spec.name} does not turn File Search on (fileSearch)`);
  }
  if ((config.interface || {}).fileSearch === false) {
    reasons.push('interface.fileSearch is false: users may not use File Search');
  }
  const agents = (config.endpoints || {}).agents || {};
  const capabilities = agents.capabilities || provider.defaultAgentCapabilities;
  if (!capabilities.includes(provider.AgentCapabilities.file_search)) {
    reasons.push('endpoints.agents.capabilities has no file_search');
  }
  if (!env.RAG_API_URL) {
    reasons.push('RAG_API_URL is not set: no RAG API embeds and searches the documents');
  }
  const uploads = uploadRouting(config, spec ? spec.preset.endpoint : null);
  for (const [endpoint, routing] of Object.entries(uploads)) {
    if (routing.paths[PDF] === 'provider') {
      reasons.push(`a PDF uploaded on ${endpoint} goes to the model as a file part, which vLLM refuses (fileConfig)`);
    }
    if (Object.values(routing.paths).includes('none') && routing.textFallbackWithoutTools !== true) {
      reasons.push(`a document uploaded on ${endpoint} for the tools is invisible in a turn without File Search`);
    }
  }
  return {
    offered: reasons.length === 0,
    spec: spec ? spec.name : null,
    endpoint: spec ? spec.preset.endpoint : null,
    model: spec ? spec.preset.model : null,
    capabilities,
    uploads,
    reasons,
  };
}

// Where an upload goes, by type, as LibreChat's unified upload decides it
// with its own functions (librechat-data-provider): "provider" (the file
// itself, as a content part), "text" (its extracted text in the prompt) or
// "none" (the tools only: File Search embeds it). For the spec's endpoint
// and for "agents", which an ephemeral agent's upload reports.
const PDF = 'application/pdf';
const UPLOAD_TYPES = [PDF, 'application/vnd.openxmlformats-officedocument.wordprocessingml.document', 'text/plain', 'image/png'];
function uploadRouting(config, specEndpoint) {
  const merged = provider.mergeFileConfig(config.fileConfig);
  const routing = {};
  for (const endpoint of [specEndpoint, provider.EModelEndpoint.agents].filter(Boolean)) {
    const endpointType = endpoint === provider.EModelEndpoint.agents ? endpoint : 'custom';
    const endpointConfig = provider.getEndpointFileConfig({ fileConfig: merged, endpoint, endpointType });
    const paths = {};
    for (const mimeType of UPLOAD_TYPES) {
      paths[mimeType] = provider.resolveUploadLLMDeliveryPath({ mimeType, endpointConfig, fileConfig: merged, endpoint });
    }
    routing[endpoint] = { paths, textFallbackWithoutTools: endpointConfig.textFallbackWithoutTools === true };
  }
  return routing;
}

// --- HTTP ---------------------------------------------------------------------------

function startupConfig() {
  const environment = report.environment || {};
  const openid = report.openid || {};
  const config = (report.config && report.config.raw) || {};
  const registration = config.registration || {};
  const specs = modelSpecs(config);
  return {
    appTitle: env.APP_TITLE || 'LibreChat',
    modelSpecs: specs.served,
    interface: interfaceConfig(config, specs.served !== undefined),
    socialLogins: registration.socialLogins || ['openid'],
    openidLoginEnabled: Boolean(openid.enabled) && environment.allowSocialLogin === true,
    openidLabel: env.OPENID_BUTTON_LABEL || 'Continue with OpenID',
    emailLoginEnabled: environment.allowEmailLogin === true,
    registrationEnabled: environment.allowRegistration === true,
    socialLoginEnabled: environment.allowSocialLogin === true,
    passwordResetEnabled: truthy(env.ALLOW_PASSWORD_RESET),
    serverDomain: env.DOMAIN_SERVER,
    instanceProjectId: null,
    double: {
      ...report,
      config: report.config && { ...report.config, raw: undefined },
      skippedModelSpecs: specs.skipped,
      fileSearch: fileSearchFromChat(config, specs.served),
    },
  };
}

function send(res, status, body, type = 'application/json') {
  const payload = type === 'application/json' ? JSON.stringify(body, null, 2) : body;
  res.writeHead(status, {
    'content-type': `${type}; charset=utf-8`,
    'x-parrotpark-double': DOUBLE,
    'cache-control': 'no-store',
  });
  res.end(payload);
}

function serve() {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://double.invalid');
    if (req.method === 'GET' && url.pathname === '/health') {
      send(res, 200, 'OK (librechat-double: a test double of LibreChat)\n', 'text/plain');
    } else if (req.method === 'GET' && url.pathname === '/api/config') {
      send(res, 200, startupConfig());
    } else if (req.method === 'GET' && url.pathname === '/api/models') {
      send(res, 200, (report.models || {}).models || {});
    } else if (req.method === 'GET' && url.pathname === '/oauth/openid') {
      if (!report.openid || !report.openid.enabled) {
        send(res, 404, { error: 'OpenID is not configured', double: report.double });
        return;
      }
      res.writeHead(302, {
        location: authorizationUrl(report.openid.discovery, url.searchParams.get('state') || 'librechat-double'),
        'x-parrotpark-double': DOUBLE,
      });
      res.end();
    } else if (req.method === 'GET' && url.pathname === '/') {
      send(
        res,
        200,
        `<!doctype html><title>${env.APP_TITLE || 'LibreChat'} (librechat-double)</title>` +
          '<p>This is <b>librechat-double</b>, a test double of LibreChat for the Parrotpark lab. ' +
          'It is not LibreChat.</p><p><a href="/oauth/openid">Log in with OpenID</a></p>\n',
        'text/html',
      );
    } else {
      send(res, 404, { error: 'not found', double: report.double });
    }
  });
  server.listen(port, host, () => log(`listening on ${host}:${port}`));
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

async function main() {
  log(`${report.double}; schema from ${report.schemaPackage} (config version ${configVersion})`);
  report.config = checkConfig();
  if (report.config.validated) {
    log(`${configPath} matches LibreChat's configuration schema`);
  }
  report.environment = checkEnvironment(report.config.raw);
  try {
    report.mongo = await withRetries(`MongoDB ping at ${redact(env.MONGO_URI)}`, () => pingMongo(env.MONGO_URI));
  } catch (error) {
    fail(`MongoDB unreachable: ${error.message}`);
  }
  log(`MongoDB answered ping at ${report.mongo.host}:${report.mongo.port} (version ${report.mongo.serverVersion})`);
  if (report.environment.fileStrategy === 's3') {
    report.s3 = await checkS3();
  }
  report.openid = await checkOpenId();
  report.ragApi = await checkRagApi();
  report.models = await loadModels(report.config.raw || {});
  report.startedAt = new Date().toISOString();
  serve();
}

main().catch((error) => fail(error.stack || error.message));
