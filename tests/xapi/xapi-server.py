#!/usr/bin/env python3
"""xapi-server.py - a XenAPI test server for vgpu's xapi glue.

Speaks XenAPI over XML-RPC/HTTP as the XenAPI reference documents it:
every call answers a struct {Status: "Success", Value: v} or
{Status: "Failure", ErrorDescription: [code, params...]}; strings go out
untyped (<value>text</value>) as xapi sends them (--typed-strings sends
<string> elements instead).  Implemented: session.login_with_password,
session.logout, VM.get_by_uuid, VM.get_other_config,
VM.add_to_other_config, VM.remove_from_other_config, VM.get_name_label,
VM.get_domid.  Unknown methods get MESSAGE_METHOD_UNKNOWN, wrong arity
MESSAGE_PARAMETER_COUNT_MISMATCH, bad sessions SESSION_INVALID, bad refs
HANDLE_INVALID.

Usage:
  xapi-server.py --vms VMS.json (--unix PATH | --port 0)
                 [--state STATE.json] [--session REF]... [--typed-strings]

VMS.json: {"<uuid>": {"name_label": "...", "domid": "5",
                      "other_config": {"k": "v"}}, ...}
--state: after every call that changes something, the VM table is written
there (atomically) in the VMS.json format, so tests can read it back.
--session: a session reference that is valid from the start (what xapi
hands a plugin).  Prints "ready <url>" on stdout once listening.
"""
import argparse
import json
import os
import re
import socketserver
import sys
import xmlrpc.client
from xmlrpc.server import SimpleXMLRPCDispatcher, SimpleXMLRPCRequestHandler

# name -> number of parameters, session included
ARITY = {
    "session.logout": 1,
    "VM.get_by_uuid": 2,
    "VM.get_other_config": 2,
    "VM.add_to_other_config": 4,
    "VM.remove_from_other_config": 3,
    "VM.get_name_label": 2,
    "VM.get_domid": 2,
}


class XenAPIFailure(Exception):
    def __init__(self, *desc):
        super().__init__(desc)
        self.desc = [str(d) for d in desc]


class Xapi:
    def __init__(self, vms, state_path, sessions):
        self.vms = vms
        self.state_path = state_path
        self.sessions = set(sessions)
        self.next_session = 1
        self.refs = {"OpaqueRef:vm-%d" % i: u for i, u in enumerate(vms)}
        self.calls = []

    def save(self):
        if not self.state_path:
            return
        tmp = self.state_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.vms, f, indent=1, sort_keys=True)
        os.replace(tmp, self.state_path)

    def vm(self, ref):
        uuid = self.refs.get(ref)
        if uuid is None:
            raise XenAPIFailure("HANDLE_INVALID", "VM", ref)
        return self.vms[uuid]

    def login(self, params):
        if len(params) not in (2, 3, 4):
            raise XenAPIFailure("MESSAGE_PARAMETER_COUNT_MISMATCH",
                                "session.login_with_password", 4,
                                len(params))
        if params[0] != "root":
            raise XenAPIFailure("SESSION_AUTHENTICATION_FAILED", params[0],
                                "Authentication failure")
        ref = "OpaqueRef:session-%d" % self.next_session
        self.next_session += 1
        self.sessions.add(ref)
        return ref

    def call(self, method, params):
        self.calls.append(method)
        if method == "session.login_with_password":
            return self.login(params)
        if method not in ARITY:
            raise XenAPIFailure("MESSAGE_METHOD_UNKNOWN", method)
        if len(params) != ARITY[method]:
            raise XenAPIFailure("MESSAGE_PARAMETER_COUNT_MISMATCH", method,
                                ARITY[method], len(params))
        if not all(isinstance(p, str) for p in params):
            raise XenAPIFailure("FIELD_TYPE_ERROR", method)
        if params[0] not in self.sessions:
            raise XenAPIFailure("SESSION_INVALID", params[0])
        return getattr(self, "m_" + method.replace(".", "_"))(*params[1:])

    def m_session_logout(self):
        return ""

    def m_VM_get_by_uuid(self, uuid):
        for ref, u in self.refs.items():
            if u == uuid.lower():
                return ref
        raise XenAPIFailure("UUID_INVALID", "VM", uuid)

    def m_VM_get_other_config(self, ref):
        return dict(self.vm(ref).setdefault("other_config", {}))

    def m_VM_add_to_other_config(self, ref, key, value):
        oc = self.vm(ref).setdefault("other_config", {})
        if key in oc:
            raise XenAPIFailure("MAP_DUPLICATE_KEY", "VM", "other_config",
                                ref, key)
        oc[key] = value
        self.save()
        return ""

    def m_VM_remove_from_other_config(self, ref, key):
        self.vm(ref).setdefault("other_config", {}).pop(key, None)
        self.save()
        return ""

    def m_VM_get_name_label(self, ref):
        return self.vm(ref).get("name_label", "")

    def m_VM_get_domid(self, ref):
        return str(self.vm(ref).get("domid", "-1"))


class Handler(SimpleXMLRPCRequestHandler):
    rpc_paths = ()  # any path, as xapi
    disable_nagle_algorithm = False  # TCP_NODELAY fails on unix sockets

    def address_string(self):
        return "client"

    def log_request(self, code="-", size="-"):
        pass

    def log_message(self, fmt, *args):
        pass


class Dispatcher(SimpleXMLRPCDispatcher):
    def __init__(self, xapi, typed):
        super().__init__(allow_none=False, encoding="utf-8")
        self.xapi = xapi
        self.typed = typed

    def _marshaled_dispatch(self, data, dispatch_method=None, path=None):
        params, method = xmlrpc.client.loads(data)
        try:
            result = {"Status": "Success",
                      "Value": self.xapi.call(method, list(params))}
        except XenAPIFailure as e:
            result = {"Status": "Failure", "ErrorDescription": e.desc}
        out = xmlrpc.client.dumps((result,), methodresponse=True,
                                  encoding="utf-8")
        if not self.typed:
            out = re.sub(r"<string>(.*?)</string>", r"\1", out, flags=re.S)
        return out.encode("utf-8")


class TCPServer(socketserver.TCPServer, Dispatcher):
    allow_reuse_address = True

    def __init__(self, addr, xapi, typed):
        Dispatcher.__init__(self, xapi, typed)
        socketserver.TCPServer.__init__(self, addr, Handler)


class UnixServer(socketserver.UnixStreamServer, Dispatcher):
    def __init__(self, path, xapi, typed):
        Dispatcher.__init__(self, xapi, typed)
        socketserver.UnixStreamServer.__init__(self, path, Handler)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vms", required=True)
    ap.add_argument("--state")
    ap.add_argument("--session", action="append", default=[])
    ap.add_argument("--typed-strings", action="store_true")
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--unix")
    where.add_argument("--port", type=int)
    a = ap.parse_args()

    with open(a.vms) as f:
        vms = {u.lower(): v for u, v in json.load(f).items()}
    xapi = Xapi(vms, a.state, a.session)
    xapi.save()
    if a.unix:
        if os.path.exists(a.unix):
            os.unlink(a.unix)
        srv = UnixServer(a.unix, xapi, a.typed_strings)
        url = "unix:" + a.unix
    else:
        srv = TCPServer(("127.0.0.1", a.port), xapi, a.typed_strings)
        url = "http://127.0.0.1:%d/" % srv.server_address[1]
    print("ready " + url, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if a.unix and os.path.exists(a.unix):
            os.unlink(a.unix)


if __name__ == "__main__":
    sys.exit(main())
