# xen/lowlevel/xs.py - a test stand-in for Xen's `xen.lowlevel.xs` Python
# extension, for running XCP-ng's real qemu-wrapper (xenopsd
# scripts/qemu-wrapper, 8.2: Python 2, 8.3: Python 3) in the e2e tests.
#
# It follows the C module tools/python/xen/lowlevel/xs/xs.c of the Xen
# source (xen-project/xen, as of commit c447b7308b13; functions xspy_read,
# xspy_write, xspy_ls, xspy_close, xshandle_init and none()) and the parts
# of libxenstore it calls (tools/libs/store/xs.c: xs_open, xs_talkv,
# get_error), but instead of linking libxenstore it speaks the xenstore
# wire protocol (xen/io/xs_wire.h) itself over the unix socket of the test
# xenstore server (tests/xs-server), found as libxenstore finds it:
# $XENSTORED_PATH, else $XENSTORED_RUNDIR/socket, else
# /var/run/xenstored/socket.
#
# Only what the stock wrapper uses is here: xs() and the handle methods
# read, write and ls (the wrapper calls read and write; ls is behind its
# xenstore_ls helper), plus close and the Error exception.  Anything else
# (watches, transactions, permissions) is absent on purpose, so that a
# wrapper that starts using it fails loudly instead of meeting a guess.
#
# Semantics kept from xs.c (Python 3 / Python 2):
#   xs(readonly=0)          connects; failure: Error(errno, strerror)
#   read(th, path)          bytes / str; None when the node does not exist
#                           (ENOENT); other errors raise Error
#   write(th, path, data)   None; data is str (UTF-8 encoded on Python 3)
#                           or bytes
#   ls(th, path)            list of str; None when the node does not exist
#   close()                 None; any later call raises Error(EINVAL)
#   th                      transaction handle string, read as strtoul(th,
#                           NULL, 16) reads it ("" is no transaction)
#   Error                   subclass of RuntimeError raised the way
#                           PyErr_SetFromErrno raises: args (errno, strerror)
# A reply of another type than the request closes the connection with
# EBADF, as xs_talkv does; a payload over XENSTORE_PAYLOAD_MAX is E2BIG.
import errno as _errno
import os as _os
import socket as _socket
import struct as _struct
import sys as _sys

_PY3 = _sys.version_info[0] >= 3

# enum xsd_sockmsg_type in xen/io/xs_wire.h (the values the test server,
# built against that header, uses).
XS_DIRECTORY = 1
XS_READ = 2
XS_WRITE = 11
XS_ERROR = 16

XENSTORE_PAYLOAD_MAX = 4096  # xs_wire.h
_HDR = _struct.Struct("=IIII")  # struct xsd_sockmsg: type, req_id, tx_id, len

# xsd_errors[] in xs_wire.h: the names the daemon sends, as errno values.
_XSD_ERRORS = ("EINVAL", "EACCES", "EEXIST", "EISDIR", "ENOENT", "ENOMEM",
               "ENOSPC", "EIO", "ENOTEMPTY", "ENOSYS", "EROFS", "EBUSY",
               "EAGAIN", "EISCONN", "E2BIG", "EPERM")


class Error(RuntimeError):
    """xen.lowlevel.xs.Error: args are (errno, strerror)."""


def _error(err):
    return Error(err, _os.strerror(err))


def _get_error(name):
    # get_error(): an unknown error string is EINVAL.
    if name in _XSD_ERRORS:
        return getattr(_errno, name)
    return _errno.EINVAL


def _daemon_path():
    path = _os.environ.get("XENSTORED_PATH")
    if path:
        return path
    rundir = _os.environ.get("XENSTORED_RUNDIR", "/var/run/xenstored")
    return rundir + "/socket"


def _strtoul16(s):
    # strtoul(s, NULL, 16): optional blanks, sign and 0x, then hex digits
    # up to the first other character; 0 when there are none.
    s = s.lstrip()
    neg = s[:1] == "-"
    if s[:1] in ("+", "-"):
        s = s[1:]
    if s[:2] in ("0x", "0X") and s[2:3] and s[2:3] in "0123456789abcdefABCDEF":
        s = s[2:]
    n = 0
    for ch in s:
        d = "0123456789abcdef".find(ch.lower())
        if d < 0:
            break
        n = n * 16 + d
    if neg:
        n = -n
    return n & 0xffffffff


def _text(name, v):
    # PyArg_ParseTuple "s": a str (Python 2 also takes unicode), no NULs.
    if _PY3:
        if not isinstance(v, str):
            raise TypeError("%s must be str, not %s" % (name, type(v).__name__))
        b = v.encode("utf-8")
    else:
        if isinstance(v, unicode):  # noqa: F821 (Python 2 only)
            b = v.encode()
        elif isinstance(v, str):
            b = v
        else:
            raise TypeError("%s must be string, not %s" % (name, type(v).__name__))
    if b"\0" in b:
        raise TypeError("%s must not contain null characters" % name)
    return b


def _data(v):
    # "s#": str (UTF-8 on Python 3) or a bytes-like object.
    if _PY3 and isinstance(v, str):
        return v.encode("utf-8")
    if isinstance(v, (bytes, bytearray)):
        return bytes(v)
    if not _PY3 and isinstance(v, unicode):  # noqa: F821 (Python 2 only)
        return v.encode()
    raise TypeError("data must be str or bytes, not %s" % type(v).__name__)


class xs(object):
    """A connection to xenstored (here: the test xenstore server)."""

    def __init__(self, readonly=0):
        # xshandle_init: xs_open(0) whatever readonly says.
        self._sock = None
        self._req_id = 0
        s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            s.connect(_daemon_path())
        except _socket.error as e:
            s.close()
            raise _error(e.errno or _errno.ECONNREFUSED)
        self._sock = s

    # -- wire ------------------------------------------------------------
    def _handle(self):
        if self._sock is None:
            raise _error(_errno.EINVAL)  # xshandle(): no handle
        return self._sock

    def _recv(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self._sock.recv(n - len(buf))
            if not chunk:  # the daemon closed the connection
                raise _socket.error(_errno.ECONNRESET, _os.strerror(_errno.ECONNRESET))
            buf += chunk
        return buf

    def _drop(self, err):
        try:
            self._sock.close()
        finally:
            self._sock = None
        raise _error(err)

    def _talk(self, mtype, th, payload):
        self._handle()
        if len(payload) > XENSTORE_PAYLOAD_MAX:
            raise _error(_errno.E2BIG)
        self._req_id = (self._req_id + 1) & 0xffffffff
        try:
            self._sock.sendall(_HDR.pack(mtype, self._req_id, th, len(payload)) + payload)
            rtype, rid, _tx, rlen = _HDR.unpack(self._recv(_HDR.size))
            if rlen > XENSTORE_PAYLOAD_MAX:
                self._drop(_errno.E2BIG)
            body = self._recv(rlen)
        except _socket.error as e:
            self._drop(e.errno or _errno.EIO)
        if rtype == XS_ERROR:
            raise _error(_get_error(body.rstrip(b"\0").decode("ascii", "replace")))
        if rtype != mtype or rid != self._req_id:
            self._drop(_errno.EBADF)
        return body

    # -- the methods the wrapper uses ------------------------------------
    def read(self, transaction, path):
        th = _strtoul16(_text("transaction", transaction).decode("latin-1"))
        p = _text("path", path)
        try:
            return self._talk(XS_READ, th, p + b"\0")
        except Error as e:
            if e.args[0] == _errno.ENOENT:
                return None
            raise

    def write(self, transaction, path, data):
        th = _strtoul16(_text("transaction", transaction).decode("latin-1"))
        p = _text("path", path)
        self._talk(XS_WRITE, th, p + b"\0" + _data(data))
        return None

    def ls(self, transaction, path):
        th = _strtoul16(_text("transaction", transaction).decode("latin-1"))
        p = _text("path", path)
        try:
            body = self._talk(XS_DIRECTORY, th, p + b"\0")
        except Error as e:
            if e.args[0] == _errno.ENOENT:
                return None
            raise
        names = [n for n in body.split(b"\0") if n]
        if _PY3:
            return [n.decode("utf-8") for n in names]
        return names

    def close(self):
        sock = self._handle()
        self._sock = None
        sock.close()
        return None
