// A real OAuth 2.1 authorization server for Lifeline's tests: oidc-provider 9.13.3 (a certified OpenID provider) on
// 127.0.0.1 port 0, plus test-only admin routes under /__admin/ on the same listener.
//
// Use: node22 oidc_as.mjs CONFIG        (CONFIG: a JSON file path, or the JSON text itself if it starts with "{")
// Env: LIFELINE_NPM_MODULES = the peers' node_modules directory (ESM imports ignore NODE_PATH).
// Ready line on stdout, once bound: "oidc-as: listening on http://127.0.0.1:PORT" (the issuer, no trailing slash).
//
// CONFIG (every field optional):
// {
//   "clients": [{
//     "client_id": "probe", "client_secret": "s3cret",
//     "token_endpoint_auth_method": "client_secret_basic" | "client_secret_post" | "private_key_jwt",
//     "jwks": {"keys": [PUBLIC_JWK]},          // private_key_jwt only (RFC 7523)
//     "scope": "mcp:read mcp:write",            // the scopes this client may ask for
//     "client_secret_expires_at": 1767225600,   // seconds since the epoch; 0 or absent = never
//     "grant_types": ["client_credentials", "refresh_token"]   // default: both
//   }],
//   "resources": [{
//     "uri": "http://127.0.0.1:4000/mcp",       // the RFC 8707 resource indicator = the JWT "aud"; "*" = any
//                                               // http(s) resource on 127.0.0.1/localhost/[::1] (ports unknown ahead)
//     "scope": "mcp:read mcp:write",            // the scopes this resource knows
//     "format": "jwt" | "opaque",               // access token format; default jwt (RS256, typ at+jwt)
//     "ttl": 300,                               // access token lifetime in seconds; default 300
//     "audience": "api://mcp"                   // optional: a fixed "aud" instead of the resource URI (the way
//                                               // some identity providers name an API)
//   }],
//   "default_resource": "http://...",           // the resource when a client sends none; default: none (opaque,
//                                               // audience-less token)
//   "rotate_refresh_tokens": true,              // rotate on every refresh_token grant (default true)
//   "refresh_token_ttl": 86400,                 // seconds (default 1 day)
//   "rfc8414": true,                            // also serve /.well-known/oauth-authorization-server (default true)
//   "jwks_cache_control": "max-age=300"         // Cache-Control on /jwks (default: none, as oidc-provider)
// }
//
// Note: oidc-provider accepts client_secret_basic and client_secret_post interchangeably for a client registered with
// either; the stats' "auth_methods" say which one a request presented.
//
// OAuth endpoints are oidc-provider's own: /.well-known/openid-configuration, /jwks, /token, /token/introspection
// (RFC 7662; any authenticated client may introspect; JWT access tokens are refused there by design: "Structured JWT
// Tokens cannot be introspected"), /token/revocation.
//
// Admin routes (JSON in, JSON out; test-only, never counted in the stats):
//   POST /__admin/mint            {"claims": {...}, "signing": "current"|"unknown_kid"|"foreign"|"hs256_public_key"
//                                  |"none", "header": {...}} -> {"token"}. Missing iss/iat/exp/jti get defaults
//                                  (issuer, now, now+300, random); a claim set to null is omitted. "current": RS256
//                                  with the current signing key (typ at+jwt); "unknown_kid": a fresh RSA key with a kid
//                                  not in the JWKS; "foreign": a fresh RSA key not in the JWKS but the CURRENT kid in
//                                  the header; "hs256_public_key": HS256 keyed with the current public key's SPKI PEM
//                                  bytes, current kid; "none": alg none (unsigned), current kid.
//   POST /__admin/rotate-keys     {} -> {"kids": [...]}: a new RSA key first in the JWKS (it signs from now on), old
//                                  ones kept.
//   POST /__admin/drop-old-keys   {} -> {"kids": [...]}: keep only the current key.
//   POST /__admin/client-secret   {"client_id", "client_secret", "client_secret_expires_at"?} -> {}: the old secret
//                                  stops working at once.
//   POST /__admin/resources       {resource as in CONFIG} -> {}: add (or replace, by uri) a resource.
//   POST /__admin/refresh-token   {"client_id", "resource"?, "scope"?, "subject"?} -> {"refresh_token"}: a refresh
//                                  token as if the client had logged a user in once (no browser flow here).
//   GET  /__admin/stats           -> {"token_requests": {client_id: n}, "token_errors": {client_id: n},
//                                  "grants": {grant_type: n}, "auth_methods": {client_secret_basic|
//                                  client_secret_post|private_key_jwt|none: n}, "jwks_fetches", "introspection_calls",
//                                  "metadata_fetches", "revocation_calls"}
//   POST /__admin/stats/reset     {} -> {}
//   POST /__admin/fault           {"path": "/token/introspection", "delay_ms": 2000, "status": 503} -> {}: from now
//                                  on requests to that exact path wait delay_ms (at most 60 s), then, with a status,
//                                  get that status and {"error": "temporarily_unavailable"} instead of an answer
//                                  (still counted). {"path": P} alone clears P's fault; {} clears all.
//
// The provider is rebuilt (same issuer, same in-memory token store) after a key or client change, since oidc-provider
// reads keys and static clients once at construction.
import * as http from 'node:http';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import { pathToFileURL } from 'node:url';

const modules = process.env.LIFELINE_NPM_MODULES;
if (!modules) {
  console.error('oidc-as: set LIFELINE_NPM_MODULES to the peers node_modules directory');
  process.exit(2);
}

// Resolve an installed package's ESM entry point ("exports" "." default/import, else "main").
function entry(pkg) {
  const dir = path.join(modules, pkg);
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  let rel = manifest.main ?? 'index.js';
  const dot = manifest.exports?.['.'];
  if (typeof dot === 'string') rel = dot;
  else if (dot) rel = dot.import ?? dot.default ?? rel;
  if (typeof rel === 'object') rel = rel.default;
  return pathToFileURL(path.join(dir, rel)).href;
}

const { default: Provider, errors } = await import(entry('oidc-provider'));
const jose = await import(entry('jose'));

const arg = process.argv[2];
if (!arg) {
  console.error('oidc-as: usage: oidc_as.mjs CONFIG_FILE_OR_JSON');
  process.exit(2);
}
let config;
try {
  config = JSON.parse(arg.trimStart().startsWith('{') ? arg : fs.readFileSync(arg, 'utf8'));
} catch (e) {
  console.error(`oidc-as: cannot read the config: ${e.message}`);
  process.exit(2);
}

const clients = new Map();
for (const c of config.clients ?? []) {
  if (!c.client_id) {
    console.error('oidc-as: every client needs a client_id');
    process.exit(2);
  }
  clients.set(c.client_id, { ...c });
}
const resources = new Map();
for (const r of config.resources ?? []) resources.set(r.uri, { ...r });
const rotateRefreshTokens = config.rotate_refresh_tokens ?? true;
const refreshTokenTtl = config.refresh_token_ttl ?? 86400;
const serveRfc8414 = config.rfc8414 ?? true;
const jwksCacheControl = config.jwks_cache_control;
const faults = new Map(); // path -> {delay_ms, status}

// Keys: private JWKs, current first.
async function newKey() {
  const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
  const jwk = await jose.exportJWK(privateKey);
  jwk.kid = await jose.calculateJwkThumbprint(jwk);
  jwk.alg = 'RS256';
  jwk.use = 'sig';
  return jwk;
}
let keys = [await newKey()];

const stats = emptyStats();
function emptyStats() {
  return {
    token_requests: {},
    token_errors: {},
    grants: {},
    auth_methods: {},
    jwks_fetches: 0,
    introspection_calls: 0,
    metadata_fetches: 0,
    revocation_calls: 0,
  };
}
function bump(map, key) {
  map[key] = (map[key] ?? 0) + 1;
}

function isLoopbackResource(uri) {
  try {
    const u = new URL(uri);
    return (u.protocol === 'http:' || u.protocol === 'https:')
      && ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname);
  } catch {
    return false;
  }
}

function resourceFor(uri) {
  return resources.get(uri) ?? (isLoopbackResource(uri) ? resources.get('*') : undefined);
}

function clientMetadata(c) {
  const method = c.token_endpoint_auth_method ?? 'client_secret_basic';
  const meta = {
    client_id: c.client_id,
    grant_types: c.grant_types ?? ['client_credentials', 'refresh_token'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: method,
  };
  if (method === 'private_key_jwt') {
    meta.jwks = c.jwks;
  } else {
    meta.client_secret = c.client_secret;
  }
  if (c.scope) meta.scope = c.scope;
  if (c.client_secret_expires_at) meta.client_secret_expires_at = c.client_secret_expires_at;
  return meta;
}

let issuer;
let provider;
let handler;

function buildProvider() {
  const p = new Provider(issuer, {
    clients: [...clients.values()].map(clientMetadata),
    jwks: { keys },
    findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
    scopes: ['openid', 'offline_access', ...new Set([...clients.values(), ...resources.values()]
      .flatMap((x) => (x.scope ?? '').split(' ')).filter(Boolean))],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: (_ctx, _client, oneOf) => (oneOf ? oneOf[0] : config.default_resource),
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, indicator) => {
          const r = resourceFor(indicator);
          if (!r) throw new errors.InvalidTarget(`unknown resource ${indicator}`);
          const format = r.format ?? 'jwt';
          const info = {
            scope: r.scope ?? '',
            audience: r.audience ?? indicator,
            accessTokenTTL: r.ttl ?? 300,
            accessTokenFormat: format,
          };
          if (format === 'jwt') info.jwt = { sign: { alg: 'RS256', kid: keys[0].kid } };
          return info;
        },
      },
    },
    ttl: { RefreshToken: refreshTokenTtl },
    rotateRefreshToken: () => rotateRefreshTokens,
    // Client-credentials tokens and refreshes carry no user session.
    expiresWithSession: () => false,
    issueRefreshToken: () => false,
    pkce: { required: () => false },
  });
  p.proxy = false;
  p.use(async (ctx, next) => {
    await next();
    if (ctx.oidc?.route === 'token') {
      const id = ctx.oidc.client?.clientId ?? ctx.oidc.params?.client_id ?? basicUser(ctx.get('authorization'))
        ?? 'unknown';
      bump(stats.token_requests, id);
      if (ctx.status >= 400) bump(stats.token_errors, id);
      if (ctx.oidc.params?.grant_type) bump(stats.grants, ctx.oidc.params.grant_type);
      bump(stats.auth_methods, authMethodOf(ctx));
    }
  });
  p.on('server_error', (_ctx, err) => console.error('oidc-as: server_error', err));
  handler = p.callback();
  return p;
}

// The client authentication a token request presented (oidc-provider itself accepts client_secret_basic and
// client_secret_post interchangeably for a client registered with either).
function authMethodOf(ctx) {
  const params = ctx.oidc.params ?? {};
  if (params.client_assertion) return 'private_key_jwt';
  if (params.client_secret) return 'client_secret_post';
  if (/^Basic\s/i.test(ctx.get('authorization') ?? '')) return 'client_secret_basic';
  return 'none';
}

function basicUser(header) {
  const m = /^Basic\s+(.+)$/i.exec(header ?? '');
  if (!m) return undefined;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  return i < 0 ? undefined : decodeURIComponent(decoded.slice(0, i));
}

async function readJson(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 1 << 20) throw new HttpError(413, 'body over 1 MiB');
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, 'body is not JSON');
  }
}

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function publicJwk(jwk) {
  const { d, p, q, dp, dq, qi, ...pub } = jwk;
  return pub;
}

async function mint({ claims = {}, signing = 'current', header = {} }) {
  const now = Math.floor(Date.now() / 1000);
  const payload = {
    iss: issuer, iat: now, exp: now + 300, jti: crypto.randomUUID(), ...claims,
  };
  for (const [k, v] of Object.entries(payload)) if (v === null) delete payload[k];
  const current = keys[0];
  switch (signing) {
    case 'current': {
      const key = await jose.importJWK(current, 'RS256');
      return new jose.SignJWT(payload).setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: current.kid, ...header })
        .sign(key);
    }
    case 'unknown_kid':
    case 'foreign': {
      const { privateKey } = await jose.generateKeyPair('RS256');
      const kid = signing === 'foreign' ? current.kid : `unknown-${crypto.randomUUID()}`;
      return new jose.SignJWT(payload).setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid, ...header })
        .sign(privateKey);
    }
    case 'hs256_public_key': {
      const pub = await jose.importJWK(publicJwk(current), 'RS256');
      const pem = await jose.exportSPKI(pub);
      return new jose.SignJWT(payload).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: current.kid, ...header })
        .sign(new TextEncoder().encode(pem));
    }
    case 'none': {
      // jose's UnsecuredJWT fixes the header to {alg: none}; build it by hand to carry the kid.
      const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
      return `${b64({ alg: 'none', typ: 'at+jwt', kid: current.kid, ...header })}.${b64(payload)}.`;
    }
    default:
      throw new HttpError(400, `unknown signing ${signing}`);
  }
}

async function admin(req, res, route) {
  const body = req.method === 'POST' ? await readJson(req) : {};
  const reply = (status, obj) => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(obj));
  };
  switch (`${req.method} ${route}`) {
    case 'POST mint':
      return reply(200, { token: await mint(body) });
    case 'POST rotate-keys':
      keys = [await newKey(), ...keys];
      provider = buildProvider();
      return reply(200, { kids: keys.map((k) => k.kid) });
    case 'POST drop-old-keys':
      keys = [keys[0]];
      provider = buildProvider();
      return reply(200, { kids: keys.map((k) => k.kid) });
    case 'POST client-secret': {
      const c = clients.get(body.client_id);
      if (!c) throw new HttpError(404, `no client ${body.client_id}`);
      if (typeof body.client_secret !== 'string') throw new HttpError(400, 'client_secret must be a string');
      c.client_secret = body.client_secret;
      if ('client_secret_expires_at' in body) c.client_secret_expires_at = body.client_secret_expires_at;
      provider = buildProvider();
      return reply(200, {});
    }
    case 'POST resources':
      if (typeof body.uri !== 'string') throw new HttpError(400, 'uri must be a string');
      resources.set(body.uri, { ...body });
      provider = buildProvider();
      return reply(200, {});
    case 'POST refresh-token': {
      const c = clients.get(body.client_id);
      if (!c) throw new HttpError(404, `no client ${body.client_id}`);
      const client = await provider.Client.find(c.client_id);
      const subject = body.subject ?? `user-of-${c.client_id}`;
      const scope = body.scope ?? c.scope ?? '';
      const grant = new provider.Grant({ accountId: subject, clientId: c.client_id });
      grant.addOIDCScope('offline_access');
      if (body.resource) {
        if (!resourceFor(body.resource)) throw new HttpError(400, `unknown resource ${body.resource}`);
        grant.addResourceScope(body.resource, scope);
      }
      const grantId = await grant.save(refreshTokenTtl);
      const rt = new provider.RefreshToken({
        accountId: subject,
        client,
        grantId,
        gty: 'authorization_code',
        scope: ['offline_access', ...scope.split(' ').filter(Boolean)].join(' '),
        resource: body.resource,
        expiresWithSession: false,
        iiat: Math.floor(Date.now() / 1000),
      });
      return reply(200, { refresh_token: await rt.save() });
    }
    case 'POST fault':
      if (body.path === undefined) faults.clear();
      else if (body.delay_ms === undefined && body.status === undefined) faults.delete(body.path);
      else faults.set(body.path, { delay_ms: Math.min(Math.max(0, body.delay_ms ?? 0), 60000), status: body.status });
      return reply(200, {});
    case 'GET stats':
      return reply(200, stats);
    case 'POST stats/reset':
      Object.assign(stats, emptyStats());
      return reply(200, {});
    default:
      throw new HttpError(404, `no admin route ${req.method} /__admin/${route}`);
  }
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  try {
    if (url.pathname.startsWith('/__admin/')) {
      await admin(req, res, url.pathname.slice('/__admin/'.length));
      return;
    }
    if (url.pathname === '/jwks') stats.jwks_fetches += 1;
    if (url.pathname === '/token/introspection') stats.introspection_calls += 1;
    if (url.pathname === '/token/revocation') stats.revocation_calls += 1;
    if (url.pathname.startsWith('/.well-known/openid-configuration')
      || url.pathname.startsWith('/.well-known/oauth-authorization-server')) {
      stats.metadata_fetches += 1;
    }
    const fault = faults.get(url.pathname);
    if (fault) {
      await new Promise((resolve) => { setTimeout(resolve, fault.delay_ms); });
      if (fault.status) {
        res.writeHead(fault.status, { 'content-type': 'application/json', 'retry-after': '1' });
        res.end(JSON.stringify({ error: 'temporarily_unavailable' }));
        return;
      }
    }
    if (url.pathname === '/jwks' && jwksCacheControl) res.setHeader('Cache-Control', jwksCacheControl);
    if (serveRfc8414 && url.pathname === '/.well-known/oauth-authorization-server') {
      // RFC 8414 §3: the same metadata document as OIDC discovery (oidc-provider serves only the latter).
      req.url = '/.well-known/openid-configuration';
    }
    handler(req, res);
  } catch (e) {
    const status = e.status ?? 500;
    if (status === 500) console.error('oidc-as: admin error', e);
    if (!res.headersSent) res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: e.message }));
  }
});

server.listen(0, '127.0.0.1', async () => {
  issuer = `http://127.0.0.1:${server.address().port}`;
  provider = buildProvider();
  // oidc-provider checks static client metadata lazily, at a client's first request: check it all before saying
  // ready, so a bad config fails the start with its reason instead of a later invalid_client.
  for (const id of clients.keys()) {
    try {
      await provider.Client.find(id);
    } catch (e) {
      console.error(`oidc-as: client ${id}: ${e.error_description ?? e.message}`);
      process.exit(2);
    }
  }
  console.log(`oidc-as: listening on ${issuer}`);
});

for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
