// A real OAuth MCP client: the official TypeScript SDK (`@modelcontextprotocol/sdk` 1.32.2) with its own
// client-credentials providers (`client/auth-extensions.js`: `ClientCredentialsProvider` for a client secret,
// `PrivateKeyJwtProvider` for private_key_jwt, RFC 7523), for Lifeline's OAuth tests.
//
// Given an MCP URL and client credentials it does what the SDK does for any client: the first request goes out
// without a token, the server's 401 names the RFC 9728 protected resource metadata, that names the authorization
// server, whose RFC 8414 / OIDC metadata gives the token endpoint; the token request carries `resource` (RFC 8707).
// Then it lists the tools and optionally calls one, and prints ONE JSON line on stdout:
//
//   {"ok": true, "protocol_version": "...", "tools": [...], "call": {"name", "is_error", "text", "structured"},
//    "tokens_obtained": N}
//   {"ok": false, "error_type": "...", "message": "...", "tokens_obtained": N}      (exit status 1)
//
// Usage (Node 22; LIFELINE_NPM_MODULES = the peers' node_modules, since ESM imports ignore NODE_PATH):
//   node oauth_client.mjs URL --client-id ID [--client-secret-file F | --private-key-file PEM [--key-alg ES256]]
//                         [--auth-method client_secret_basic|client_secret_post] [--scope S] [--issuer URL]
//                         [--call NAME [--args JSON]] [--timeout S]
//   node oauth_client.mjs URL --no-auth ...      (the same client without any credentials: expect a refusal)
//
// The secret comes from --client-secret-file or the OAUTH_CLIENT_SECRET environment variable, never argv.
// --issuer is the SDK's `expectedIssuer` (it then refuses metadata for any other issuer). The SDK speaks the
// handshake era only (latest 2025-11-25). client_secret_post is the SDK's own method selection, fed by a client
// information record that names it (as dynamic registration would). Every run is bounded by --timeout (default
// 60 s).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';

const modules = process.env.LIFELINE_NPM_MODULES;
const sdk = (rel) => pathToFileURL(path.join(modules ?? '', '@modelcontextprotocol/sdk/dist/esm', rel)).href;

let tokensObtained = 0;

function emit(obj) {
  process.stdout.write(`${JSON.stringify({ ...obj, tokens_obtained: tokensObtained })}\n`);
}

async function main() {
  if (!modules) throw new Error('set LIFELINE_NPM_MODULES to the peers node_modules directory');
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      'client-id': { type: 'string' },
      'client-secret-file': { type: 'string' },
      'private-key-file': { type: 'string' },
      'key-alg': { type: 'string', default: 'ES256' },
      'auth-method': { type: 'string', default: 'client_secret_basic' },
      scope: { type: 'string' },
      issuer: { type: 'string' },
      'no-auth': { type: 'boolean', default: false },
      call: { type: 'string' },
      args: { type: 'string' },
      timeout: { type: 'string', default: '60' },
    },
  });
  const url = positionals[0];
  if (!url) throw new Error('usage: oauth_client.mjs URL --client-id ID ...');
  const timeoutMs = Number(values.timeout) * 1000;
  const timer = setTimeout(() => {
    emit({ ok: false, error_type: 'Timeout', message: `no outcome within ${values.timeout} s` });
    process.exit(1);
  }, timeoutMs);

  const { Client } = await import(sdk('client/index.js'));
  const { StreamableHTTPClientTransport } = await import(sdk('client/streamableHttp.js'));
  const { ClientCredentialsProvider, PrivateKeyJwtProvider } = await import(sdk('client/auth-extensions.js'));

  let authProvider;
  if (!values['no-auth']) {
    const clientId = values['client-id'];
    if (!clientId) throw new Error('--client-id is required unless --no-auth');
    if (values['private-key-file']) {
      authProvider = new PrivateKeyJwtProvider({
        clientId,
        privateKey: fs.readFileSync(values['private-key-file'], 'utf8'),
        algorithm: values['key-alg'],
        scope: values.scope,
        expectedIssuer: values.issuer,
      });
    } else {
      const secret = values['client-secret-file']
        ? fs.readFileSync(values['client-secret-file'], 'utf8').trim()
        : (process.env.OAUTH_CLIENT_SECRET ?? '');
      if (!secret) throw new Error('no secret (--client-secret-file or OAUTH_CLIENT_SECRET)');
      authProvider = new ClientCredentialsProvider({
        clientId, clientSecret: secret, scope: values.scope, expectedIssuer: values.issuer,
      });
      if (values['auth-method'] === 'client_secret_post') {
        const info = authProvider.clientInformation();
        authProvider.clientInformation = () => ({ ...info, token_endpoint_auth_method: 'client_secret_post' });
      } else if (values['auth-method'] !== 'client_secret_basic') {
        throw new Error(`unknown --auth-method ${values['auth-method']}`);
      }
    }
    const save = authProvider.saveTokens.bind(authProvider);
    authProvider.saveTokens = (tokens) => {
      tokensObtained += 1;
      return save(tokens);
    };
  }

  const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider });
  const client = new Client({ name: 'lifeline-oauth-client', version: '1.0.0' });
  await client.connect(transport);
  const out = { ok: true, protocol_version: transport.protocolVersion ?? null };
  const listed = await client.listTools();
  out.tools = listed.tools.map((t) => t.name);
  if (values.call) {
    const result = await client.callTool({ name: values.call, arguments: values.args ? JSON.parse(values.args) : {} });
    out.call = {
      name: values.call,
      is_error: Boolean(result.isError),
      text: (result.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('\n'),
      structured: result.structuredContent ?? null,
    };
  }
  await transport.terminateSession().catch(() => {});
  await client.close();
  clearTimeout(timer);
  emit(out);
}

// The SDK warns on stderr when expectedIssuer is omitted; stdout stays one JSON line.
main().catch((e) => {
  emit({ ok: false, error_type: e?.constructor?.name ?? 'Error', message: String(e?.message ?? e).slice(0, 2000) });
  process.exit(1);
});
