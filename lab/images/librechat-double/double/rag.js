// SPDX-License-Identifier: GPL-3.0-or-later
// librechat-rag-api-double: a TEST DOUBLE of LibreChat's RAG API
// (ghcr.io/danny-avila/librechat-rag-api-dev-lite), which cannot be
// obtained here. It is not the RAG API and says so in every answer (header
// x-parrotpark-double: librechat-rag-api). It reads the RAG API's
// environment and, at start, proves what the RAG API needs from it:
//   - PostgreSQL at DB_HOST:DB_PORT accepts POSTGRES_USER/POSTGRES_PASSWORD
//     for POSTGRES_DB, the vector extension is installed there and computes
//     a distance, and the user may create tables (the RAG API creates its
//     own);
//   - EMBEDDINGS_PROVIDER=openai has RAG_OPENAI_BASEURL, RAG_OPENAI_API_KEY
//     and EMBEDDINGS_MODEL, and JWT_SECRET is set;
//   - with EMBEDDINGS_PROVIDER=openai, RAG_CHECK_EMBEDDING_CTX_LENGTH is set
//     to something else than "true": the RAG API reads it as the OpenAI
//     embedder's check_embedding_ctx_length, on when unset or "true" (any
//     case). On, the embedder tokenises each text with tiktoken's
//     cl100k_base (downloaded from the internet on first use) and sends the
//     token ids, which an OpenAI-compatible server such as LiteLLM in front
//     of bge-m3 embeds as if they were its own tokens: wrong vectors, no
//     error. The double refuses to start with it, as the configuration the
//     real RAG API would mishandle.
// A failure stops it with exit status 1 and a clear message. The embeddings
// endpoint is asked once (GET <RAG_OPENAI_BASEURL>/models) and the answer
// reported, never fatal: LiteLLM may start later. Serves GET /health
// ({"status": "UP"}, as the RAG API) and GET /double/report.
'use strict';

const http = require('node:http');
const { Client } = require('pg');

const env = process.env;
const DOUBLE = 'librechat-rag-api';
const retries = Number(env.DOUBLE_START_RETRIES || 30);
const delayMs = Number(env.DOUBLE_START_DELAY_MS || 2000);
const report = { double: 'librechat-rag-api-double: a test double of the LibreChat RAG API, not the RAG API' };

const log = (message) => process.stdout.write(`[librechat-rag-api-double] ${message}\n`);
function fail(message) {
  process.stderr.write(`[librechat-rag-api-double] FATAL: ${message}\n`);
  process.exit(1);
}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function checkEnvironment() {
  const problems = [];
  if ((env.VECTOR_DB_TYPE || 'pgvector') !== 'pgvector') {
    problems.push(`VECTOR_DB_TYPE is ${env.VECTOR_DB_TYPE}; the double checks pgvector only`);
  }
  for (const name of ['DB_HOST', 'POSTGRES_DB', 'POSTGRES_USER', 'POSTGRES_PASSWORD', 'JWT_SECRET']) {
    if (!env[name]) {
      problems.push(`${name} must be set`);
    }
  }
  const provider = (env.EMBEDDINGS_PROVIDER || 'openai').toLowerCase();
  // As the RAG API reads it: on unless set to something else than "true".
  const checkCtxLength = (env.RAG_CHECK_EMBEDDING_CTX_LENGTH ?? 'True').toLowerCase() === 'true';
  if (provider === 'openai') {
    for (const name of ['RAG_OPENAI_API_KEY', 'RAG_OPENAI_BASEURL', 'EMBEDDINGS_MODEL']) {
      if (!env[name]) {
        problems.push(`${name} must be set when EMBEDDINGS_PROVIDER is openai`);
      }
    }
    if (checkCtxLength) {
      const given = env.RAG_CHECK_EMBEDDING_CTX_LENGTH;
      problems.push(
        `RAG_CHECK_EMBEDDING_CTX_LENGTH is ${given === undefined ? 'unset' : JSON.stringify(given)}, ` +
          'so the check is on: with EMBEDDINGS_PROVIDER openai the RAG API would tokenise every text with ' +
          "tiktoken's cl100k_base (downloaded from the internet) and send the token ids to " +
          `${env.EMBEDDINGS_MODEL || 'the embedding model'} at ${env.RAG_OPENAI_BASEURL || 'RAG_OPENAI_BASEURL'}, ` +
          'which embeds them as its own tokens; set RAG_CHECK_EMBEDDING_CTX_LENGTH=false',
      );
    }
  }
  if (problems.length > 0) {
    fail(`the environment is not what the RAG API needs:\n  ${problems.join('\n  ')}`);
  }
  return {
    vectorDbType: env.VECTOR_DB_TYPE || 'pgvector',
    embeddingsProvider: provider,
    checkEmbeddingCtxLength: checkCtxLength,
    embeddingsModel: env.EMBEDDINGS_MODEL,
    openaiBaseUrl: env.RAG_OPENAI_BASEURL,
    openaiApiKeySet: Boolean(env.RAG_OPENAI_API_KEY),
    jwtSecretSet: true,
  };
}

async function checkDatabase() {
  const target = `${env.DB_HOST}:${env.DB_PORT || 5432}/${env.POSTGRES_DB} as ${env.POSTGRES_USER}`;
  let lastError;
  for (let round = 1; round <= retries; round += 1) {
    const client = new Client({
      host: env.DB_HOST,
      port: Number(env.DB_PORT || 5432),
      database: env.POSTGRES_DB,
      user: env.POSTGRES_USER,
      password: env.POSTGRES_PASSWORD,
      connectionTimeoutMillis: 5000,
    });
    try {
      await client.connect();
      const extension = await client.query("SELECT extversion FROM pg_extension WHERE extname = 'vector'");
      if (extension.rows.length === 0) {
        fail(`the vector extension is not installed in database ${env.POSTGRES_DB} on ${env.DB_HOST}`);
      }
      const distance = await client.query("SELECT '[1,2,3]'::vector <-> '[1,2,5]'::vector AS distance");
      const create = await client.query(
        "SELECT has_database_privilege(current_user, current_database(), 'CREATE') AS database, " +
          "has_schema_privilege(current_user, 'public', 'CREATE') AS public_schema",
      );
      const server = await client.query('SHOW server_version');
      if (!create.rows[0].public_schema) {
        fail(`${env.POSTGRES_USER} may not create tables in the public schema of ${env.POSTGRES_DB}`);
      }
      return {
        target,
        connected: true,
        serverVersion: server.rows[0].server_version,
        vectorExtension: extension.rows[0].extversion,
        l2Distance: Number(distance.rows[0].distance),
        mayCreateTables: true,
      };
    } catch (error) {
      lastError = error;
      log(`PostgreSQL ${target}: attempt ${round}/${retries} failed: ${error.message}`);
      if (round < retries) {
        await sleep(delayMs);
      }
    } finally {
      await client.end().catch(() => {});
    }
  }
  fail(`PostgreSQL ${target} unreachable after ${retries} attempts: ${lastError.message}`);
  return null;
}

async function checkEmbeddingsEndpoint() {
  if (!env.RAG_OPENAI_BASEURL) {
    return null;
  }
  const url = `${env.RAG_OPENAI_BASEURL.replace(/\/$/, '')}/models`;
  try {
    const response = await fetch(url, {
      headers: { authorization: `Bearer ${env.RAG_OPENAI_API_KEY}` },
      signal: AbortSignal.timeout(5000),
    });
    const body = response.ok ? await response.json() : null;
    const models = body && Array.isArray(body.data) ? body.data.map((model) => model.id) : [];
    return { url, status: response.status, models, hasModel: models.includes(env.EMBEDDINGS_MODEL) };
  } catch (error) {
    return { url, status: null, error: error.message };
  }
}

function send(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'x-parrotpark-double': DOUBLE });
  res.end(JSON.stringify(body, null, 2));
}

async function main() {
  log(report.double);
  report.environment = checkEnvironment();
  report.database = await checkDatabase();
  log(`PostgreSQL OK: vector ${report.database.vectorExtension} in ${env.POSTGRES_DB} on ${env.DB_HOST}`);
  report.embeddingsEndpoint = await checkEmbeddingsEndpoint();
  report.startedAt = new Date().toISOString();
  const port = Number(env.RAG_PORT || 8000);
  const server = http.createServer((req, res) => {
    const path = new URL(req.url, 'http://double.invalid').pathname;
    if (req.method === 'GET' && path === '/health') {
      send(res, 200, { status: 'UP', double: report.double });
    } else if (req.method === 'GET' && path === '/double/report') {
      send(res, 200, report);
    } else {
      send(res, 404, { detail: 'Not Found', double: report.double });
    }
  });
  server.listen(port, env.RAG_HOST || '0.0.0.0', () => log(`listening on port ${port}`));
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((error) => fail(error.stack || error.message));
