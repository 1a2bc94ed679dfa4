#!/bin/sh
# The official conformance suite's client-credentials scenarios (`auth/client-credentials-basic`,
# `auth/client-credentials-jwt`) run a client command with the scenario's server URL as the last argument and
# the credentials in MCP_CONFORMANCE_CONTEXT (JSON: client_id, and client_secret or private_key_pem). This turns
# them into `lifeline check` flags, with the secrets in files of a private temporary directory (never on the
# command line), and runs the check.
#
# usage: conformance_oauth_client.sh LIFELINE_BINARY SERVER_URL
set -eu
bin=$1
url=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT INT TERM
python3 - "$dir" <<'PY'
import json, os, sys
ctx = json.loads(os.environ["MCP_CONFORMANCE_CONTEXT"])
d = sys.argv[1]
for key, name in (("client_id", "client_id"), ("client_secret", "secret"), ("private_key_pem", "key.pem")):
    if key in ctx:
        with open(os.path.join(d, name), "w") as f:
            f.write(ctx[key])
PY
set -- check --oauth-client-id "$(cat "$dir/client_id")"
if [ -f "$dir/secret" ]; then set -- "$@" --oauth-client-secret-file "$dir/secret"; fi
if [ -f "$dir/key.pem" ]; then set -- "$@" --oauth-private-key-file "$dir/key.pem"; fi
"$bin" "$@" "$url"
