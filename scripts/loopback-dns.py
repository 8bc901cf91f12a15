#!/usr/bin/env python3
"""A DNS server for scripts/ci-schemathesis.sh: every name has one A record, 127.0.0.1,
and nothing else (other types answer NOERROR, empty). Webhook URLs the fuzzer invents
then resolve, and any connection stays on this machine.

    scripts/loopback-dns.py PORT      (UDP and TCP on 127.0.0.1; needs dnslib)
"""

import sys
import time

from dnslib import QTYPE, RR, A
from dnslib.server import BaseResolver, DNSLogger, DNSServer


class Loopback(BaseResolver):
    def resolve(self, request, handler):
        reply = request.reply()
        if QTYPE[request.q.qtype] == "A":
            reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A("127.0.0.1"), ttl=0))
        return reply


def main():
    port = int(sys.argv[1])
    quiet = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
    for tcp in (False, True):
        DNSServer(Loopback(), address="127.0.0.1", port=port, tcp=tcp, logger=quiet).start_thread()
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
