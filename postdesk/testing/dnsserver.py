"""A small authoritative DNS server for tests (UDP on 127.0.0.1): answers TXT and CNAME queries from a dict."""

from __future__ import annotations

import socket
import threading

import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


class DnsServer:
    def __init__(self):
        self.records: dict[tuple[str, str], list[str]] = {}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self._stop = False

    def add(self, name: str, rtype: str, value: str) -> None:
        self.records.setdefault((name.rstrip(".").lower(), rtype.upper()), []).append(value)

    def clear(self) -> None:
        self.records.clear()

    def _answer(self, data: bytes) -> bytes:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        question = query.question[0]
        name = question.name.to_text().rstrip(".").lower()
        rtype = dns.rdatatype.to_text(question.rdtype)
        values = self.records.get((name, rtype))
        if values:
            if rtype == "TXT":
                texts = []
                for v in values:  # long TXT values as several 255-octet strings, as DNS requires
                    chunks = [v[i : i + 255] for i in range(0, len(v), 255)] or [""]
                    texts.append(" ".join('"' + c.replace('"', '\\"') + '"' for c in chunks))
                rrset = dns.rrset.from_text(question.name, 60, dns.rdataclass.IN, rtype, *texts)
            else:
                rrset = dns.rrset.from_text(question.name, 60, dns.rdataclass.IN, rtype, *values)
            response.answer.append(rrset)
        elif not any(key[0] == name for key in self.records):
            response.set_rcode(dns.rcode.NXDOMAIN)
        return response.to_wire()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                self.sock.sendto(self._answer(data), peer)
            except Exception:  # noqa: BLE001 - a test server answers what it can
                continue

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self._stop = True
        self.thread.join(2)
        self.sock.close()
