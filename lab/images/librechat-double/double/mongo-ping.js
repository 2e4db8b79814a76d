// SPDX-License-Identifier: GPL-3.0-or-later
// librechat-double: a minimal MongoDB wire-protocol client (OP_MSG) that sends
// {ping: 1} and {buildInfo: 1} to the first host of a mongodb:// URI, so the
// double proves that MONGO_URI leads to a server that speaks MongoDB's
// protocol. It does not authenticate: credentials in the URI are reported
// as "not checked".
'use strict';

const net = require('node:net');

function parseMongoUri(uri) {
  const match = /^mongodb(\+srv)?:\/\/(?:([^@/]*)@)?([^/?]+)(?:\/([^?]*))?(?:\?(.*))?$/.exec(uri || '');
  if (!match) {
    throw new Error(`MONGO_URI is not a mongodb:// URI: ${JSON.stringify(redact(uri || ''))}`);
  }
  if (match[1]) {
    throw new Error('mongodb+srv:// URIs need DNS SRV records; the double checks mongodb:// URIs only');
  }
  const first = match[3].split(',')[0];
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(first);
  const [host, port] = bracket ? [bracket[1], bracket[2]] : first.split(':');
  return {
    host,
    port: Number(port || 27017),
    database: decodeURIComponent(match[4] || '') || 'test',
    hasCredentials: Boolean(match[2]),
  };
}

function redact(uri) {
  return uri.replace(/\/\/[^@/]*@/, '//***@');
}

function bsonDocument(fields) {
  const parts = [];
  for (const [key, value] of Object.entries(fields)) {
    const name = Buffer.from(`${key}\0`, 'utf8');
    if (typeof value === 'number') {
      const number = Buffer.alloc(4);
      number.writeInt32LE(value);
      parts.push(Buffer.from([0x10]), name, number);
    } else {
      const text = Buffer.from(`${value}\0`, 'utf8');
      const length = Buffer.alloc(4);
      length.writeInt32LE(text.length);
      parts.push(Buffer.from([0x02]), name, length, text);
    }
  }
  const body = Buffer.concat([...parts, Buffer.from([0])]);
  const size = Buffer.alloc(4);
  size.writeInt32LE(body.length + 4);
  return Buffer.concat([size, body]);
}

// Top-level fields of a BSON document: numbers, strings and booleans are
// decoded, other types skipped.
function readBson(buffer) {
  const out = {};
  const end = buffer.readInt32LE(0) - 1;
  let at = 4;
  while (at < end) {
    const type = buffer[at];
    const nameEnd = buffer.indexOf(0, at + 1);
    const name = buffer.toString('utf8', at + 1, nameEnd);
    at = nameEnd + 1;
    switch (type) {
      case 0x01:
        out[name] = buffer.readDoubleLE(at);
        at += 8;
        break;
      case 0x02: {
        const length = buffer.readInt32LE(at);
        out[name] = buffer.toString('utf8', at + 4, at + 4 + length - 1);
        at += 4 + length;
        break;
      }
      case 0x03:
      case 0x04:
        at += buffer.readInt32LE(at);
        break;
      case 0x05:
        at += 4 + 1 + buffer.readInt32LE(at);
        break;
      case 0x07:
        at += 12;
        break;
      case 0x08:
        out[name] = buffer[at] === 1;
        at += 1;
        break;
      case 0x09:
      case 0x11:
      case 0x12:
        out[name] = type === 0x12 ? Number(buffer.readBigInt64LE(at)) : undefined;
        at += 8;
        break;
      case 0x0a:
        out[name] = null;
        break;
      case 0x10:
        out[name] = buffer.readInt32LE(at);
        at += 4;
        break;
      case 0x13:
        at += 16;
        break;
      default:
        throw new Error(`unsupported BSON type 0x${type.toString(16)} in the answer`);
    }
  }
  return out;
}

function command(socket, requestId, fields) {
  const document = bsonDocument(fields);
  const header = Buffer.alloc(16);
  header.writeInt32LE(16 + 4 + 1 + document.length, 0);
  header.writeInt32LE(requestId, 4);
  header.writeInt32LE(0, 8);
  header.writeInt32LE(2013, 12); // OP_MSG
  const flags = Buffer.alloc(4);
  socket.write(Buffer.concat([header, flags, Buffer.from([0]), document]));
}

function exchange(host, port, commands, timeoutMs) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const answers = [];
    let pending = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer from ${host}:${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('connect', () => commands.forEach((fields, index) => command(socket, index + 1, fields)));
    socket.on('data', (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 4 && pending.length >= pending.readInt32LE(0)) {
        const length = pending.readInt32LE(0);
        const message = pending.subarray(0, length);
        pending = pending.subarray(length);
        if (message.readInt32LE(12) !== 2013 || message[20] !== 0) {
          socket.destroy();
          clearTimeout(timer);
          reject(new Error(`${host}:${port} answered with something that is not an OP_MSG reply`));
          return;
        }
        answers.push(readBson(message.subarray(21)));
        if (answers.length === commands.length) {
          clearTimeout(timer);
          socket.end();
          resolve(answers);
        }
      }
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

async function pingMongo(uri, timeoutMs = 5000) {
  const target = parseMongoUri(uri);
  const [ping, info] = await exchange(
    target.host,
    target.port,
    [
      { ping: 1, $db: 'admin' },
      { buildInfo: 1, $db: 'admin' },
    ],
    timeoutMs,
  );
  if (ping.ok !== 1) {
    throw new Error(`${target.host}:${target.port} refused ping: ${ping.errmsg || JSON.stringify(ping)}`);
  }
  return {
    host: target.host,
    port: target.port,
    database: target.database,
    ping: 'ok',
    serverVersion: info.version || null,
    ferretdbVersion: info.ferretdbVersion || null,
    credentials: target.hasCredentials ? 'present, not checked by the double' : 'none',
  };
}

module.exports = { pingMongo, parseMongoUri, redact };
