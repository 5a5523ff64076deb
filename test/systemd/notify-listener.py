#!/usr/bin/env python3
"""Stand-in for systemd's notify socket in tests.

Binds an AF_UNIX datagram socket at argv[1] (an absolute path, or "@name" for
the abstract namespace), prints {"bound": ADDRESS} once it is bound, then one
JSON line per datagram: {"pid": sender pid from SCM_CREDENTIALS, "data": text}.
Runs until killed; removes a path socket on SIGTERM.
"""
import json
import os
import signal
import socket
import struct
import sys

address = sys.argv[1]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
sock.bind("\0" + address[1:] if address.startswith("@") else address)


def stop(*_):
    if not address.startswith("@"):
        try:
            os.unlink(address)
        except OSError:
            pass
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
print(json.dumps({"bound": address}), flush=True)
ucred = struct.calcsize("iII")
while True:
    data, ancillary, _flags, _addr = sock.recvmsg(65536, socket.CMSG_SPACE(ucred))
    pid = None
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack("iII", payload[:ucred])[0]
    print(json.dumps({"pid": pid, "data": data.decode("utf-8", "replace")}), flush=True)
