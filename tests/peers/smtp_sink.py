"""A local SMTP sink for the monitor's email alert tests: aiosmtpd (a real SMTP server) on 127.0.0.1, port
chosen by the OS, with SMTP AUTH (PLAIN/LOGIN) allowed without TLS because it is loopback-only.

Usage: smtp_sink.py DIR USER PASSWORD [CERT KEY]
  - with CERT and KEY (PEM files): offers STARTTLS and refuses AUTH and mail before it (RFC 3207);
  - prints `smtp-sink: listening on 127.0.0.1:PORT` once bound;
  - writes every accepted message to DIR/<n>.json: {"mail_from", "rcpt_tos", "auth_user", "tls", "data"};
  - refuses AUTH with other credentials (535) and mail without AUTH (530);
  - answers any recipient whose local part starts with `reject` with a permanent 550 and records the attempt
    as DIR/rejected-<n>.json.
"""

import asyncio
import itertools
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def main() -> None:
    out_dir, user, password = sys.argv[1], sys.argv[2].encode(), sys.argv[3].encode()
    tls_context = None
    if len(sys.argv) == 6:
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(sys.argv[4], sys.argv[5])
    counter = itertools.count(1)

    def write(name: str, record: dict) -> None:
        tmp = os.path.join(out_dir, f".{name}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(out_dir, name))  # atomic: the test never reads half a file

    def authenticator(_server, _session, _envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == user and auth_data.password == password
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    class Handler:
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            if address.split("@")[0].startswith("reject"):
                write(f"rejected-{next(counter)}.json", {"rcpt": address})
                return "550 5.1.1 no such user"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):
            user_name = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
            write(
                f"{next(counter)}.json",
                {
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": envelope.rcpt_tos,
                    "auth_user": user_name,
                    "tls": session.ssl is not None,
                    "data": envelope.content.decode("utf-8", "replace"),
                },
            )
            return "250 Message accepted for delivery"

    def factory():
        return SMTP(
            Handler(),
            hostname="sink.local",
            authenticator=authenticator,
            auth_required=True,
            auth_require_tls=tls_context is not None,
            tls_context=tls_context,
            require_starttls=tls_context is not None,
        )

    async def serve():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(factory, host="127.0.0.1", port=0)
        port = server.sockets[0].getsockname()[1]
        print(f"smtp-sink: listening on 127.0.0.1:{port}", flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
