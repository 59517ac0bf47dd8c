"""A small OAuth 2.0 token server for tests (127.0.0.1): authorization-code and refresh-token grants, rotating refresh
tokens on every refresh, and revocation."""

from __future__ import annotations

import json
import secrets
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class TokenServer:
    def __init__(self, expires_in: int = 3600):
        self.expires_in = expires_in
        self.codes: set[str] = set()
        self.refresh_tokens: set[str] = set()
        self.access_tokens: set[str] = set()
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                server.requests.append(form)
                grant = form.get("grant_type")
                if grant == "authorization_code" and form.get("code") in server.codes:
                    server.codes.discard(form["code"])
                    body, status = server.issue(), 200
                elif grant == "refresh_token" and form.get("refresh_token") in server.refresh_tokens:
                    server.refresh_tokens.discard(form["refresh_token"])  # rotation: the old one dies
                    body, status = server.issue(), 200
                else:
                    body, status = (
                        {"error": "invalid_grant", "error_description": "Token has been expired or revoked."},
                        400,
                    )
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def issue(self) -> dict:
        access, refresh = "at-" + secrets.token_hex(8), "rt-" + secrets.token_hex(8)
        self.access_tokens.add(access)
        self.refresh_tokens.add(refresh)
        return {
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": self.expires_in,
            "token_type": "Bearer",
        }

    def new_code(self) -> str:
        code = "code-" + secrets.token_hex(6)
        self.codes.add(code)
        return code

    def revoke_all(self) -> None:
        self.refresh_tokens.clear()
        self.access_tokens.clear()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
