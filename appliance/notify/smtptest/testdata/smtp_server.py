"""A real SMTP server for snapferry's e-mail tests, built on Debian's python3-aiosmtpd.

Run with /usr/bin/python3 (Debian's interpreter sees python3-aiosmtpd). It listens on
127.0.0.1 at a free port, prints "READY <port>" on stdout once it accepts connections, and
saves every message as msg-NNN.eml (the bytes received) with msg-NNN.json (envelope sender,
recipients, whether TLS was on, who authenticated) in --dir.

  --tls none|starttls|tls   plain, STARTTLS offered and required, or implicit TLS
  --cert/--key              PEM files for the two TLS modes
  --user/--password         require AUTH (PLAIN or LOGIN) with these credentials
  --login-only              offer AUTH LOGIN only (as some old relays do)
"""
import argparse
import asyncio
import json
import logging
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Saver:
    def __init__(self, outdir):
        self.outdir = outdir
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        base = os.path.join(self.outdir, "msg-%03d" % self.count)
        tls = server.transport.get_extra_info("ssl_object") is not None
        login = None
        if session.authenticated and isinstance(session.auth_data, LoginPassword):
            login = session.auth_data.login.decode()
        with open(base + ".json", "w") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                       "tls": tls, "login": login}, f)
        # Written last and renamed, so a test that sees the .eml also sees the .json.
        with open(base + ".tmp", "wb") as f:
            f.write(envelope.original_content)
        os.rename(base + ".tmp", base + ".eml")
        return "250 Message accepted for delivery"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--tls", choices=["none", "starttls", "tls"], default="none")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--login-only", action="store_true")
    a = ap.parse_args()
    # aiosmtpd warns about the test set-ups on purpose (AUTH on implicit TLS); keep stderr for
    # real errors.
    logging.getLogger("mail.log").setLevel(logging.ERROR)

    ctx = None
    if a.tls != "none":
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.cert, a.key)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login.decode() == a.user
              and auth_data.password.decode() == a.password)
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    handler = Saver(a.dir)

    def factory():
        kw = dict(hostname="smtp.test", decode_data=False, enable_SMTPUTF8=True)
        if a.tls == "starttls":
            kw.update(tls_context=ctx, require_starttls=True)
        if a.user:
            # With implicit TLS the whole connection is encrypted; aiosmtpd only knows
            # about STARTTLS, so its own TLS check is turned off in that mode.
            kw.update(authenticator=authenticator, auth_required=True,
                      auth_require_tls=(a.tls == "starttls"))
            if a.login_only:
                kw.update(auth_exclude_mechanism=["PLAIN"])
        else:
            kw.update(auth_require_tls=False)
        return SMTP(handler, **kw)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(loop.create_server(
        factory, host="127.0.0.1", port=0, ssl=ctx if a.tls == "tls" else None))
    print("READY %d" % server.sockets[0].getsockname()[1], flush=True)
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
