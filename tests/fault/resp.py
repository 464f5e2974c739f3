"""A minimal blocking RESP2 client over one TCP socket (standard library only).

The fault harness needs to tell a definite failure (an error reply) from an
unknown outcome (a timeout, a closed connection), which client libraries
blur; this client raises Unknown for the latter and returns RespError values
for the former.
"""
import socket


class RespError:
    """An error reply (-ERR ..., -TRYAGAIN ...): the command did not apply."""

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return "RespError(%r)" % self.text


class Unknown(Exception):
    """No reply: timed out or the connection closed. The outcome is unknown."""


def encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, int):
            a = str(a).encode()
        elif isinstance(a, str):
            a = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Conn:
    def __init__(self, port, host="127.0.0.1", timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.port = port

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def settimeout(self, t):
        self.sock.settimeout(t)

    def send(self, *args):
        try:
            self.sock.sendall(encode(args))
        except OSError as e:
            raise Unknown("send: %s" % e) from None

    def call(self, *args):
        self.send(*args)
        return self.read()

    def _fill(self):
        try:
            chunk = self.sock.recv(65536)
        except OSError as e:  # socket.timeout is an OSError
            raise Unknown("recv: %s" % e) from None
        if not chunk:
            raise Unknown("connection closed")
        self.buf += chunk

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return line
            self._fill()

    def read(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return RespError(rest.decode(errors="replace"))
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            data = bytes(self.buf[:n])
            del self.buf[:n + 2]
            return data
        if t == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self.read() for _ in range(n)]
        raise Unknown("protocol error: %r" % line[:80])
