# The engine's side of runc's --console-socket protocol, for
# __test__/console.test.mjs: listens on a unix socket, receives one pty master
# over SCM_RIGHTS with the pty's name as the message, optionally types INPUT
# into it, then reads what the container writes until the line END arrives.
# Prints one JSON object: the name sent, the master's own pts number, and the
# output. Usage: python3 console-receiver.py SOCKET [INPUT]
import fcntl
import json
import os
import select
import socket
import struct
import sys
import time

path = sys.argv[1]
typed = sys.argv[2].encode() if len(sys.argv) > 2 else b""

server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(path)
server.listen(1)
print("listening", flush=True)
server.settimeout(30)
conn, _ = server.accept()
message, fds, _, _ = socket.recv_fds(conn, 4096, 4)
conn.close()
server.close()
os.unlink(path)
if len(fds) != 1:
    sys.exit(f"expected one descriptor, got {len(fds)}")
master = fds[0]
# TIOCGPTN (x86-64 value; Python's termios lacks the name): the master's pts number.
TIOCGPTN = 0x80045430
number = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0" * 4))[0]
if typed:
    os.write(master, typed)

output = b""
deadline = time.monotonic() + 30
while b"END" not in output and time.monotonic() < deadline:
    ready, _, _ = select.select([master], [], [], 0.5)
    if not ready:
        continue
    try:
        chunk = os.read(master, 4096)
    except OSError:  # EIO: every replica descriptor is closed
        break
    if not chunk:
        break
    output += chunk
print(json.dumps({"name": message.decode(), "pts": number, "isatty": os.isatty(master), "output": output.decode(errors="replace")}), flush=True)
