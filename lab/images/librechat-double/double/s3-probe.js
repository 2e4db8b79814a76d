// SPDX-License-Identifier: GPL-3.0-or-later
// s3-probe: what LibreChat's s3 file strategy does with its environment, done
// once at start by the double. LibreChat builds its client from AWS_REGION,
// AWS_ENDPOINT_URL (when set) and AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
// with the AWS SDK (@aws-sdk/client-s3, no other option), and stores an
// upload as uploads/<user>/<file> in AWS_BUCKET_NAME. The probe does the same
// with the same SDK: it writes uploads/parrotpark-double/startup-probe.txt,
// reads it back and leaves it there, so a wrong endpoint, bucket or key shows
// here and in the lab's bucket instead of at a user's first upload.
'use strict';

const { S3Client, PutObjectCommand, GetObjectCommand } = require('@aws-sdk/client-s3');

const PROBE_KEY = 'uploads/parrotpark-double/startup-probe.txt';

// LibreChat's client settings; the probe's own bounds (a few seconds at most, so that a bucket out of reach,
// as in the molecule scenarios, never holds up the start) are the only addition.
function client(env) {
  const config = {
    region: env.AWS_REGION,
    ...(env.AWS_ENDPOINT_URL ? { endpoint: env.AWS_ENDPOINT_URL } : {}),
    maxAttempts: 2,
    requestHandler: { connectionTimeout: 3000, requestTimeout: 5000 },
  };
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) {
    config.credentials = { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY };
  }
  return new S3Client(config);
}

// Write, read back and compare the probe object; resolve to what the report shows, reject with S3's own words.
async function probeS3(env, now = new Date()) {
  const s3 = client(env);
  const body = `written by librechat-double at ${now.toISOString()}\n`;
  const bucket = env.AWS_BUCKET_NAME;
  try {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: PROBE_KEY, Body: body, ContentType: 'text/plain' }));
    const answer = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: PROBE_KEY }));
    const read = await answer.Body.transformToString();
    if (read !== body) {
      throw new Error(`s3://${bucket}/${PROBE_KEY} read back ${JSON.stringify(read)}, not what was written`);
    }
  } catch (error) {
    const code = (error.$metadata && error.$metadata.httpStatusCode) || '';
    throw new Error(`${error.name || 'Error'}${code ? ` (HTTP ${code})` : ''}: ${error.message}`);
  } finally {
    s3.destroy();
  }
  return { ok: true, bucket, key: PROBE_KEY, endpoint: env.AWS_ENDPOINT_URL || null, bytes: body.length };
}

module.exports = { probeS3, PROBE_KEY };
