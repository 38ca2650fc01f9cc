"""A small ctypes binding over libsrt's C API (Debian: libsrt1.5-openssl), just what the SRT listener needs.

Why ctypes and not a Python package: no maintained Python binding of libsrt
exists on PyPI (the `srt`/`pysrt` names are subtitle parsers); libsrt's C API
is small and stable (1.4 → 1.5 kept it), and the protocol work (ARQ,
handshake, AES) stays in the library. Constants are from libsrt 1.5's
`srt.h` / `access_control.h`.

Threading: every call releases the GIL (ctypes.CDLL), so a thread blocked in
`recvmsg` or `accept` does not hold up the others. The listen callback runs
on libsrt's receive thread (shared by every connection on the port): keep
it short.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import socket
import struct
import threading

LIBRARY_NAMES = ("libsrt.so.1.5", "libsrt-gnutls.so.1.5", "srt")

# SRT_SOCKOPT
SRTO_RCVSYN = 2
SRTO_RCVTIMEO = 14
SRTO_LATENCY = 23
SRTO_PASSPHRASE = 26
SRTO_PBKEYLEN = 27
SRTO_RCVLATENCY = 43
SRTO_STREAMID = 46
SRTO_PAYLOADSIZE = 49
SRTO_TRANSTYPE = 50
# SRT_SOCKSTATUS
SRTS_CONNECTED = 5
SRTS_BROKEN = 6
# errors: major * 1000 + minor
SRT_ECONNLOST = 2001
SRT_ETIMEOUT = 6003
SRT_EASYNCRCV = 6002
# Reject reasons a listener gives (access_control.h): the caller sees them as its connect error.
SRT_REJX_BAD_REQUEST = 1400
SRT_REJX_UNAUTHORIZED = 1401
SRT_REJX_FORBIDDEN = 1403
SRT_REJX_NOTFOUND = 1404
SRT_REJX_CONFLICT = 1409
SRT_REJX_INTERNAL = 1500  # SRT_REJX_ISE
SRT_LIVE_MAX_PAYLOAD = 1456
STREAMID_MAX = 512

ListenCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p,
                                  ctypes.c_char_p)


class SrtError(OSError):
    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


class _SockaddrIn(ctypes.Structure):
    _fields_ = [("family", ctypes.c_ushort), ("port", ctypes.c_ubyte * 2), ("addr", ctypes.c_ubyte * 4),
                ("zero", ctypes.c_ubyte * 8)]


class _Sockaddr6(ctypes.Structure):  # big enough for IPv4 and IPv6 peers
    _fields_ = [("family", ctypes.c_ushort), ("data", ctypes.c_ubyte * 26)]


_lib: ctypes.CDLL | None = None
_lock = threading.Lock()


def find_library() -> str | None:
    for name in LIBRARY_NAMES:
        try:
            ctypes.CDLL(name)
            return name
        except OSError:
            continue
    return ctypes.util.find_library("srt")


def lib() -> ctypes.CDLL:
    """libsrt, loaded and started once per process; SrtError when it is not installed."""
    global _lib
    with _lock:
        if _lib is None:
            name = find_library()
            if name is None:
                raise SrtError("libsrt is not installed (Debian package libsrt1.5-openssl)")
            so = ctypes.CDLL(name)
            so.srt_create_socket.restype = ctypes.c_int
            so.srt_bind.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
            so.srt_listen.argtypes = [ctypes.c_int, ctypes.c_int]
            so.srt_accept.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
            so.srt_listen_callback.argtypes = [ctypes.c_int, ListenCallback, ctypes.c_void_p]
            so.srt_close.argtypes = [ctypes.c_int]
            so.srt_recvmsg.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
            so.srt_getsockflag.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
            so.srt_setsockflag.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
            so.srt_getlasterror_str.restype = ctypes.c_char_p
            so.srt_getlasterror.argtypes = [ctypes.c_void_p]
            so.srt_getsockstate.argtypes = [ctypes.c_int]
            so.srt_setrejectreason.argtypes = [ctypes.c_int, ctypes.c_int]
            so.srt_setloglevel.argtypes = [ctypes.c_int]
            if so.srt_startup() < 0:
                raise SrtError("srt_startup failed")
            so.srt_setloglevel(3)  # LOG_ERR: libsrt's own notices would flood stderr per packet loss
            _lib = so
        return _lib


def last_error() -> SrtError:
    so = lib()
    return SrtError(so.srt_getlasterror_str().decode(errors="replace"), so.srt_getlasterror(None))


def _check(result: int) -> int:
    if result < 0:
        raise last_error()
    return result


def create_socket() -> int:
    return _check(lib().srt_create_socket())


def set_int(sock: int, opt: int, value: int) -> None:
    v = ctypes.c_int(value)
    _check(lib().srt_setsockflag(sock, opt, ctypes.byref(v), ctypes.sizeof(v)))


def set_bool(sock: int, opt: int, value: bool) -> None:
    set_int(sock, opt, 1 if value else 0)


def set_str(sock: int, opt: int, value: str) -> None:
    raw = value.encode()
    _check(lib().srt_setsockflag(sock, opt, ctypes.c_char_p(raw), len(raw)))


def get_int(sock: int, opt: int) -> int:
    v, n = ctypes.c_int(0), ctypes.c_int(ctypes.sizeof(ctypes.c_int))
    _check(lib().srt_getsockflag(sock, opt, ctypes.byref(v), ctypes.byref(n)))
    return v.value


def get_str(sock: int, opt: int, size: int = STREAMID_MAX + 1) -> str:
    buf, n = ctypes.create_string_buffer(size), ctypes.c_int(size)
    _check(lib().srt_getsockflag(sock, opt, buf, ctypes.byref(n)))
    return buf.raw[: n.value].decode(errors="replace")


def bind_listen(sock: int, host: str, port: int, backlog: int = 64) -> None:
    addr = _SockaddrIn(family=socket.AF_INET)
    addr.port[:] = list(struct.pack("!H", port))
    addr.addr[:] = list(socket.inet_aton(socket.gethostbyname(host or "0.0.0.0")))
    _check(lib().srt_bind(sock, ctypes.byref(addr), ctypes.sizeof(addr)))
    _check(lib().srt_listen(sock, backlog))


def listen_callback(sock: int, callback) -> None:
    """`callback` is a ListenCallback object; the caller keeps a reference for the socket's life."""
    _check(lib().srt_listen_callback(sock, callback, None))


def peer_address(ptr: int | None) -> str:
    """The `sockaddr*` a listen callback gets, as "host:port" (IPv4 or IPv6)."""
    if not ptr:
        return ""
    sa = _Sockaddr6.from_address(ptr)
    raw = bytes(sa.data)
    if sa.family == socket.AF_INET:
        return f"{socket.inet_ntoa(raw[2:6])}:{struct.unpack('!H', raw[:2])[0]}"
    if sa.family == socket.AF_INET6:
        return f"[{socket.inet_ntop(socket.AF_INET6, raw[6:22])}]:{struct.unpack('!H', raw[:2])[0]}"
    return ""


def accept(sock: int) -> int:
    addr, n = _Sockaddr6(), ctypes.c_int(ctypes.sizeof(_Sockaddr6))
    return _check(lib().srt_accept(sock, ctypes.byref(addr), ctypes.byref(n)))


def recvmsg(sock: int, buf) -> int:
    """Bytes received into `buf` (a ctypes string buffer); 0 on a receive timeout; SrtError when the peer is gone."""
    n = lib().srt_recvmsg(sock, buf, len(buf))
    if n < 0:
        err = last_error()
        if err.code == SRT_ETIMEOUT or err.code == SRT_EASYNCRCV:
            return 0
        raise err
    return n


def reject(sock: int, reason: int) -> None:
    lib().srt_setrejectreason(sock, reason)


def state(sock: int) -> int:
    return lib().srt_getsockstate(sock)


def close(sock: int) -> None:
    lib().srt_close(sock)

