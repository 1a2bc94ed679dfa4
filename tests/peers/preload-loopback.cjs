// Forces every Node TCP `listen` in this process onto the loopback interface.
//
// Use: `node -r /path/to/preload-loopback.cjs <script> ...`.
//
// Why: server-everything, supergateway and the conformance suite's scenario servers call `listen(PORT)` with no
// host, which binds every interface, and none of them has a host flag. Lifeline's tests must only ever listen on
// loopback.
//
// How: `net.Server.prototype.listen()` resolves its arguments and ends in `server._listen2(address, port,
// addressType, backlog, fd, flags)` (lib/net.js `setupListenHandle`). Hooking there, rather than `listen()`, keeps
// every calling convention of `listen()` working, including `listen(0)` followed by `server.address().port`.
// Wildcard or missing addresses become 127.0.0.1 (or `LIFELINE_BIND_HOST`, e.g. `::1`); explicit addresses,
// inherited file descriptors and unix-socket paths pass through unchanged.
//
// With `LIFELINE_ANNOUNCE_LISTEN=1` every TCP listener also writes `lifeline-preload: listening on HOST:PORT` to
// stderr once bound, so a launcher can start a server with port 0 and read the real port back (no port races).
'use strict';

const net = require('net');

const WILDCARDS = new Set([undefined, null, '', '::', '0.0.0.0', '::0', '0:0:0:0:0:0:0:0']);
const host = process.env.LIFELINE_BIND_HOST || '127.0.0.1';
const hostType = net.isIPv6(host) ? 6 : 4;
const announce = process.env.LIFELINE_ANNOUNCE_LISTEN === '1';
const original = net.Server.prototype._listen2;

if (typeof original !== 'function') {
  throw new Error('preload-loopback: net.Server.prototype._listen2 not found in this Node version');
}

net.Server.prototype._listen2 = function loopbackListen2(address, port, addressType, backlog, fd, flags) {
  const inheritedFd = typeof fd === 'number' && fd >= 0;
  if (announce) {
    this.prependOnceListener('listening', () => {
      const a = this.address();
      if (a && typeof a === 'object') {
        const shown = a.family === 'IPv6' || a.family === 6 ? `[${a.address}]` : a.address;
        process.stderr.write(`lifeline-preload: listening on ${shown}:${a.port}\n`);
      }
    });
  }
  if (!inheritedFd && WILDCARDS.has(address) && (port === undefined || port >= 0)) {
    return original.call(this, host, port, hostType, backlog, fd, flags);
  }
  return original.call(this, address, port, addressType, backlog, fd, flags);
};
