// A long-lived MCP client session (official TypeScript SDK `@modelcontextprotocol/sdk` 1.32.2) for the gateway's
// recovery tests: connects to URL (Streamable HTTP), calls `add` once, then again for every line `call` read on
// stdin, until `quit` or end of input. Prints one JSON object per line on stdout:
//
//   {"event": "connected", "session_id": "..."}
//   {"event": "result", "n": N, "text": "...", "session_id": "..."}
//   {"event": "error", "n": N, "message": "..."}        (the session goes on)
//
// `session_id` is the transport's (`StreamableHTTPClientTransport.sessionId`: the SDK adopts an id from any POST
// answer that carries one). Bounded by --timeout seconds (default 120).
//
// Usage (Node 22; LIFELINE_NPM_MODULES = the peers' node_modules, since ESM imports ignore NODE_PATH):
//   node session_client.mjs URL [--timeout S]
import * as path from 'node:path';
import * as readline from 'node:readline';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';

const modules = process.env.LIFELINE_NPM_MODULES;
const sdk = (rel) => pathToFileURL(path.join(modules ?? '', '@modelcontextprotocol/sdk/dist/esm', rel)).href;
const emit = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

async function main() {
  if (!modules) throw new Error('set LIFELINE_NPM_MODULES to the peers node_modules directory');
  const { positionals, values } = parseArgs({ allowPositionals: true, options: { timeout: { type: 'string' } } });
  const timer = setTimeout(() => {
    emit({ event: 'error', n: 0, message: 'timeout' });
    process.exit(1);
  }, Number(values.timeout ?? 120) * 1000);
  const { Client } = await import(sdk('client/index.js'));
  const { StreamableHTTPClientTransport } = await import(sdk('client/streamableHttp.js'));
  const transport = new StreamableHTTPClientTransport(new URL(positionals[0]));
  const client = new Client({ name: 'lifeline-session-client', version: '1.0.0' });
  await client.connect(transport);
  emit({ event: 'connected', session_id: transport.sessionId });
  const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  for (let n = 1; ; n += 1) {
    try {
      const result = await client.callTool({ name: 'add', arguments: { a: n, b: 1 } });
      const text = result.content.filter((c) => c.type === 'text').map((c) => c.text).join('');
      emit({ event: 'result', n, text, is_error: Boolean(result.isError), session_id: transport.sessionId });
    } catch (err) {
      emit({ event: 'error', n, message: String(err?.message ?? err) });
    }
    const { value, done } = await lines.next();
    if (done || value.trim() !== 'call') break;
  }
  clearTimeout(timer);
  await client.close();
}

main().catch((err) => {
  emit({ event: 'error', n: 0, message: String(err?.stack ?? err) });
  process.exit(1);
});
