#!/usr/bin/env python3
"""Molecule verify helper: uses the mail server like a client would and prints what happened.

Usage: mail_probe.py HOST CA_FILE DOMAIN MAILBOX   (password in $MAIL_PASSWORD)
"""

import imaplib
import json
import os
import smtplib
import ssl
import sys
import time
import uuid


def smtp_checks(host: str, ctx: ssl.SSLContext, domain: str, mailbox: str, token: str) -> dict:
    result: dict = {}
    with smtplib.SMTP(host, 25, timeout=20) as smtp:
        smtp.ehlo("client.example.org")
        smtp.starttls(context=ctx)
        smtp.ehlo("client.example.org")
        result["starttls"] = True
        for rcpt, tag in (
            (f"{mailbox}@{domain}", "direct"),
            (f"postmaster@{domain}", "postmaster"),
        ):
            msg = (
                f"From: buerger@example.org\r\nTo: {rcpt}\r\nSubject: Probe {tag} {token}\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n\r\nGrüße aus dem Test\r\n"
            )
            refused = smtp.sendmail("buerger@example.org", [rcpt], msg.encode())
            result[f"accepted_{tag}"] = refused == {}
        for rcpt, tag in (("jemand@example.org", "external"), (f"niemand@{domain}", "unknown")):
            try:
                smtp.sendmail(f"{mailbox}@{domain}", [rcpt], b"Subject: nope\r\n\r\nnope\r\n")
                result[f"refused_{tag}"] = None
            except smtplib.SMTPRecipientsRefused as exc:
                code, text = exc.recipients[rcpt]
                result[f"refused_{tag}"] = f"{code} {text.decode()}"
    return result


def imap_checks(
    host: str, ctx: ssl.SSLContext, domain: str, mailbox: str, password: str, token: str
) -> dict:
    result: dict = {}
    imap = imaplib.IMAP4(host, 143, timeout=20)
    result["login_disabled_before_tls"] = "LOGINDISABLED" in imap.capabilities
    imap.starttls(ssl_context=ctx)
    try:
        imap.login(f"{mailbox}@{domain}", password + "x")
        result["wrong_password_refused"] = False
    except imaplib.IMAP4.error:
        result["wrong_password_refused"] = True
    imap.login(f"{mailbox}@{domain}", password)
    imap.select("INBOX", readonly=True)
    found: dict = {}
    for _ in range(40):  # delivery is asynchronous; wait at most ~20 s
        for tag in ("direct", "postmaster"):
            _, data = imap.search(None, "SUBJECT", f'"Probe {tag} {token}"')
            found[tag] = bool(data[0])
        if all(found.values()):
            break
        time.sleep(0.5)
        imap.noop()
    result["delivered_direct"] = found["direct"]
    result["delivered_postmaster"] = found["postmaster"]
    imap.logout()
    with imaplib.IMAP4_SSL(host, 993, ssl_context=ctx, timeout=20) as imaps:
        imaps.login(f"{mailbox}@{domain}", password)
        result["imaps_login"] = True
    return result


def main() -> None:
    host, cafile, domain, mailbox = sys.argv[1:5]
    password = os.environ["MAIL_PASSWORD"]
    ctx = ssl.create_default_context(cafile=cafile)
    token = uuid.uuid4().hex
    result = smtp_checks(host, ctx, domain, mailbox, token)
    result.update(imap_checks(host, ctx, domain, mailbox, password, token))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
