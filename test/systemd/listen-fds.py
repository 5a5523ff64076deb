#!/usr/bin/env python3
"""Socket activation by hand, for tests: pass several descriptors at once.

Usage: listen-fds.py [--unix PATH] [--file PATH] -- COMMAND [ARGS...]

Binds, in this order, a UDP socket on [::1]:0 (becomes fd 3) and a TCP socket
on [::1]:0 listening with backlog 16 (fd 4) — datagram first, to show that the
daemon sorts them by type and not by position — then, if asked, a file opened
read-only (fd 5) and a listening AF_UNIX stream socket (next fd), all left
blocking as Python makes them. Prints "listen-fds: udp=Q tcp=P" on stderr,
sets LISTEN_FDS, LISTEN_PID (this pid: exec keeps it) and LISTEN_FDNAMES
(dns:web[:junk][:local]), and execs COMMAND.
"""
import fcntl
import os
import socket
import sys

args = sys.argv[1:]
sep = args.index("--")
opts, command = args[:sep], args[sep + 1:]
unix_path = opts[opts.index("--unix") + 1] if "--unix" in opts else None
file_path = opts[opts.index("--file") + 1] if "--file" in opts else None

udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
udp.bind(("::1", 0))
tcp = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tcp.bind(("::1", 0))
tcp.listen(16)
print(f"listen-fds: udp={udp.getsockname()[1]} tcp={tcp.getsockname()[1]}", file=sys.stderr, flush=True)
# detach(): the descriptors stop belonging to Python objects that could close them.
passed = [(udp.detach(), "dns"), (tcp.detach(), "web")]
if file_path is not None:
    passed.append((os.open(file_path, os.O_RDONLY), "junk"))
if unix_path is not None:
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(unix_path)
    unix.listen(4)
    passed.append((unix.detach(), "local"))

# Move each descriptor to 3, 4, ...: first out of the way (dup to 100 and
# up), then into place. os.dup2 clears close-on-exec on the target, but
# dup2(n, n) is a no-op that would leave it set: never rely on that.
high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd, _ in passed]
for fd, _ in passed:
    os.close(fd)
for i, fd in enumerate(high):
    os.dup2(fd, 3 + i, inheritable=True)
    os.close(fd)
    os.set_inheritable(3 + i, True)

os.environ["LISTEN_FDS"] = str(len(passed))
os.environ["LISTEN_PID"] = str(os.getpid())
os.environ["LISTEN_FDNAMES"] = ":".join(name for _, name in passed)
os.execvp(command[0], command)
