// node `ws` peer for the ctrlchan benchmark.
//
//   node bench/node_client.js URL N INTERVAL_MS WARMUP_MS WINDOW_MS INFLIGHT [CA_FILE]
//
// N connections, keep-alive the way ws' README heartbeat does it on a client: a timer per
// connection calls ws.ping() every interval and the 'pong' event acknowledges it (RTT measured
// from the ping call). Speaks the driver protocol of bench/driver.py.
'use strict';
const fs = require('fs');
const readline = require('readline');
const WebSocket = require('ws');

const [url, nArg, intervalArg, warmupArg, windowArg, inflightArg, caFile] = process.argv.slice(2);
const n = Number(nArg), interval = Number(intervalArg), warmup = Number(warmupArg);
const windowMs = Number(windowArg), inflight = Number(inflightArg);
const opts = { perMessageDeflate: false, handshakeTimeout: 30000 };
if (caFile) opts.ca = fs.readFileSync(caFile);

let connected = 0, failed = 0, issued = 0, acks = 0, rttSumUs = 0, rttN = 0, lost = 0;
const socks = [];
const say = (line) => process.stdout.write(line + '\n');

function open() {
  const ws = new WebSocket(url, opts);
  let sentAt = 0n;
  ws.on('open', () => {
    connected++;
    setInterval(() => { sentAt = process.hrtime.bigint(); ws.ping(); }, interval);
    pump();
  });
  ws.on('pong', () => {
    acks++;
    if (sentAt) { rttSumUs += Number((process.hrtime.bigint() - sentAt) / 1000n); rttN++; sentAt = 0n; }
  });
  ws.on('error', (e) => { if (ws.readyState !== WebSocket.OPEN) { failed++; process.stderr.write(`node_client: ${e.message}\n`); pump(); } });
  ws.on('close', () => { lost++; });
  socks.push(ws);
}

let t0 = 0n;
function pump() {
  while (issued < n && issued - connected - failed < inflight) { issued++; open(); }
  if (connected + failed === n) connectedAll();
}

function connectedAll() {
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  say(`CONNECTED ${secs.toFixed(4)} ${connected} ${failed}`);
  const mark = () => say(`MARK ${acks} ${rttSumUs} ${rttN} 0 0`);
  setTimeout(() => {
    mark();
    setTimeout(() => { mark(); exitWhenStdinCloses(); }, windowMs);
  }, warmup);
}

// The driver samples /proc right after the last MARK: exit only once it closes our stdin.
function exitWhenStdinCloses() {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}

say('READY');
const rl = readline.createInterface({ input: process.stdin });
rl.once('line', () => { rl.close(); t0 = process.hrtime.bigint(); pump(); });
setTimeout(() => process.exit(3), 300000).unref();
