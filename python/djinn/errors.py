# SPDX-License-Identifier: BSD-3-Clause
"""Djinn's errors as Python exceptions.

Every failure of the C library is a negative errno or a negative Djinn code
(include/djinn/common.h; the table in docs/CONTROL.md, "Error codes"). It
becomes an exception of the class for that code, carrying the code (`.code`,
negative as in C), its name (`.name`) and the message: the server's text
where the server answered with an ERROR ("matmul: inner dimensions differ:
[3,4] @ [5,6]"), else the library's. Each class also derives from the
built-in exception a Python programmer would catch for it (ShapeError is a
ValueError, DjinnTimeoutError a TimeoutError, ...).
"""
import errno

# enum dj_error (include/djinn/common.h), returned negated.
DJ_EPROTO_VERSION = 10000
DJ_EAUTH = 10001
DJ_ESHAPE = 10002
DJ_EDTYPE = 10003
DJ_EUNKNOWN_OP = 10004
DJ_EHANDLE = 10005
DJ_ENOGPU = 10006
DJ_ENODPDK = 10007
DJ_ELIMIT = 10008
DJ_EPEER = 10009

_DJ_NAMES = {DJ_EPROTO_VERSION: "DJ_EPROTO_VERSION", DJ_EAUTH: "DJ_EAUTH",
             DJ_ESHAPE: "DJ_ESHAPE", DJ_EDTYPE: "DJ_EDTYPE",
             DJ_EUNKNOWN_OP: "DJ_EUNKNOWN_OP", DJ_EHANDLE: "DJ_EHANDLE",
             DJ_ENOGPU: "DJ_ENOGPU", DJ_ENODPDK: "DJ_ENODPDK", DJ_ELIMIT: "DJ_ELIMIT",
             DJ_EPEER: "DJ_EPEER"}


class DjinnError(Exception):
    """A failure reported by libdjinn or the server: .code (negative), .name, .message."""

    def __init__(self, code, message=""):
        self.code = code
        self.name = error_name(code)
        self.message = message
        super().__init__(f"{message} [{self.name}]" if message else self.name)


class ProtocolVersionError(DjinnError):
    """The peer speaks another protocol version (-DJ_EPROTO_VERSION)."""


class AuthError(DjinnError, PermissionError):
    """Authentication failed or is missing (-DJ_EAUTH)."""


class ShapeError(DjinnError, ValueError):
    """Shapes do not fit the operation, or a bad shape (-DJ_ESHAPE)."""


class DTypeError(DjinnError, TypeError):
    """A dtype the operation (or Djinn) does not take (-DJ_EDTYPE)."""


class UnknownOperationError(DjinnError, ValueError):
    """No such operation (-DJ_EUNKNOWN_OP), on the server or in the aten:: table."""


class HandleError(DjinnError, KeyError):
    """Unknown or freed tensor handle (-DJ_EHANDLE)."""

    def __str__(self):  # KeyError would quote the message
        return Exception.__str__(self)


class NoGPUError(DjinnError):
    """No usable GPU (-DJ_ENOGPU)."""


class NoDPDKError(DjinnError):
    """The data plane is not available (-DJ_ENODPDK)."""


class LimitError(DjinnError):
    """A configured limit was exceeded: memory, handles, sizes (-DJ_ELIMIT)."""


class PeerError(DjinnError):
    """The peer reported an error (-DJ_EPEER)."""


class InvalidArgumentError(DjinnError, ValueError):
    """A field missing or of the wrong type, bad attributes (-EINVAL)."""


class OutOfRangeError(DjinnError, IndexError):
    """An index or byte range outside a tensor (-ERANGE), e.g. an embedding index."""


class MessageSizeError(DjinnError, ValueError):
    """A payload that is not the tensor's byte size (-EMSGSIZE)."""


class ProtocolError(DjinnError):
    """Malformed or unexpected messages (-EPROTO, -EBADMSG)."""


class OutOfMemoryError(DjinnError, MemoryError):
    """The server (or this process) ran out of memory (-ENOMEM)."""


class DjinnConnectionError(DjinnError, ConnectionError):
    """The connection is gone or cannot be made (-ECONNRESET, -ECONNREFUSED, ...)."""


class DjinnTimeoutError(DjinnError, TimeoutError):
    """A request or connection timed out (-ETIMEDOUT)."""


class NotSupportedError(DjinnError, NotImplementedError):
    """Something this frontend or the library cannot do (-ENOTSUP)."""


_BY_CODE = {
    DJ_EPROTO_VERSION: ProtocolVersionError, DJ_EAUTH: AuthError, DJ_ESHAPE: ShapeError,
    DJ_EDTYPE: DTypeError, DJ_EUNKNOWN_OP: UnknownOperationError, DJ_EHANDLE: HandleError,
    DJ_ENOGPU: NoGPUError, DJ_ENODPDK: NoDPDKError, DJ_ELIMIT: LimitError,
    DJ_EPEER: PeerError,
    errno.EINVAL: InvalidArgumentError, errno.ERANGE: OutOfRangeError,
    errno.EMSGSIZE: MessageSizeError, errno.EPROTO: ProtocolError,
    errno.EBADMSG: ProtocolError, errno.ENOMEM: OutOfMemoryError,
    errno.ETIMEDOUT: DjinnTimeoutError, errno.ENOTSUP: NotSupportedError,
}
for _e in (errno.ECONNRESET, errno.ECONNREFUSED, errno.EPIPE, errno.ENOTCONN,
           errno.ESHUTDOWN, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ECONNABORTED):
    _BY_CODE[_e] = DjinnConnectionError


def error_name(code):
    c = -code if code < 0 else code
    if c in _DJ_NAMES:
        return _DJ_NAMES[c]
    return errno.errorcode.get(c, f"error {code}")


def error_class(code):
    return _BY_CODE.get(-code if code < 0 else code, DjinnError)


def make_error(code, message=""):
    """The exception for a negative return code and its message."""
    return error_class(code)(code, message)
