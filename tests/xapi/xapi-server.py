#!/usr/bin/env python3
"""xapi-server.py - a XenAPI test server for vgpu's xapi glue.

Speaks XenAPI over XML-RPC/HTTP as the XenAPI reference documents it:
every call answers a struct {Status: "Success", Value: v} or
{Status: "Failure", ErrorDescription: [code, params...]}; strings go out
untyped (<value>text</value>) as xapi sends them (--typed-strings sends
<string> elements instead).  Implemented: session.login_with_password,
session.logout, VM.get_by_uuid, VM.get_other_config,
VM.add_to_other_config, VM.remove_from_other_config, VM.get_name_label,
VM.get_domid, VM.get_domain_type, VM.destroy, host.get_all, host.get_by_uuid,
host.get_name_label, host.get_uuid, host.{get,add_to,remove_from}_other_config,
host.call_plugin, pool.get_all, pool.get_master and
pool.{get,add_to,remove_from}_other_config,
VM.{get,add_to,remove_from}_blocked_operations, host.get_resident_VMs,
VM.pool_migrate, host.evacuate, VM.get_all, VM.get_uuid,
VM.get_power_state, VM.get_resident_on and VM.start_on.  Unknown methods get
MESSAGE_METHOD_UNKNOWN, wrong arity MESSAGE_PARAMETER_COUNT_MISMATCH, bad
sessions SESSION_INVALID, bad refs HANDLE_INVALID.

host.call_plugin(session, host, plugin, fn, args) does what xapi does
(ocaml/xapi/xapi_plugins.ml, call_plugin): it runs <plugin-dir>/<plugin>
with ONE argument, the methodCall xapi builds (params: the caller's
session ref, a struct of the string args), and judges the plugin's stdout
by xapi's rules (ocaml/libs/http-lib/xMLRPC.ml, XMLRPC.From) on the tree
xapi's XML parser gives (ocaml/libs/xml-light2/xml.ml): a Success with a
string Value is returned, a Failure is raised as that XenAPI error,
anything else becomes the error xapi produces for it.  The fixtures of
these upstream files are in shared/fixtures/xcpng/xapi-8.3/.

Usage:
  xapi-server.py --vms VMS.json (--unix PATH | --port 0)
                 [--state STATE.json] [--session REF]... [--typed-strings]
                 [--plugin-dir DIR] [--answer-style STYLE]
                 [--hosts HOSTS.json] [--pool-state POOL.json]
  xapi-server.py call-plugin [--host=NAME] URL SESSION PLUGIN FN [K=V]...
      a XenAPI client, as `xe host-call-plugin`: host.get_all, then
      host.call_plugin on the host named NAME (default: the first) of the
      server at URL
  xapi-server.py call URL SESSION METHOD [ARG]...
      one XenAPI call with string arguments, or json:VALUE for a list or
      map (a list or map Value is printed as JSON)
  xapi-server.py run-plugin PATH call SESSION FN [KEY=VALUE]...
  xapi-server.py run-plugin PATH argv [ARG]...
      runs PATH as call_plugin runs a plugin (with the methodCall xapi
      would build, or with exactly the ARGs given) and judges its answer
      by the same rules, without a server
  Both print "OK <value>" or "FAILURE <ErrorDescription as JSON>" and exit
  0; they exit 2 when the server cannot be reached.

VMS.json: {"<uuid>": {"name_label": "...", "domid": "5",
                      "other_config": {"k": "v"}, "resident_on": "h2",
                      "blocked_operations": {"op": "reason"}}, ...}
A VM with a domid other than -1 runs, on its resident_on host (the
master when none is named).  VM.pool_migrate and host.evacuate follow
xapi's checks (tests/xapi/xapi-rules.md section 4: blocked_operations
first, OPERATION_BLOCKED [vm_ref; reason]; then the power state; evacuate
checks every resident VM's pool_migrate before moving any) and only move
the record: resident_on becomes the destination.  Memory is not modelled:
evacuate places each VM on the first other live host, where xapi's
binpack picks the host with the most free memory.
A pool of hosts: the server is the pool's one database (the master's
xapi, which every host's calls reach).  HOSTS.json: [{"name_label": "h1",
"uuid": "...", "env": {"VAR": "value"}, "live": true}, ...], the first
being the master; host.call_plugin on a host runs the plugin with that
host's env added (its own xenstore, state and run folders), and on a host
that is not live fails with HOST_OFFLINE.  Without --hosts there is one
host.  The pool object (pool.get_all, pool.get_master, pool's and hosts'
other-config) is written to POOL.json as {"pool": {"other_config": ...},
"hosts": [...]} after every change.  Map fields follow xapi's rules:
add_to_other_config of a key that exists fails with MAP_DUPLICATE_KEY
[class, "other_config", ref, key], atomically (one lock, like xapi's
database lock); remove_from_other_config of an absent key succeeds.
--state: after every call that changes something, the VM table is written
there (atomically) in the VMS.json format, so tests can read it back.
--session: a session reference that is valid from the start (what xapi
hands a plugin).  --plugin-dir: the folder host.call_plugin finds plugins
in (xapi's Xapi_globs.xapi_plugins_root, /etc/xapi.d/plugins); plugins run
with this server's environment.  Prints "ready <url>" on stdout once
listening.  --answer-style frames the HTTP answers: length (the default,
Content-Length), chunked, close (no length, the connection ends it),
continue (a 100 Continue first), huge (announces 2 MB, sends nothing),
garbage (not HTTP).  Calls are served in threads (a plugin calls back into the
server while host.call_plugin waits for it).
"""
import argparse
import http.client
import json
import os
import re
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import xmlrpc.client
from xml.parsers import expat
from xmlrpc.server import SimpleXMLRPCDispatcher, SimpleXMLRPCRequestHandler

HOST_REF = "OpaqueRef:host-0"
POOL_REF = "OpaqueRef:pool-0"
PLUGIN_TIMEOUT_S = 120

# name -> number of parameters, session included
ARITY = {
    "session.logout": 1,
    "VM.get_by_uuid": 2,
    "VM.get_other_config": 2,
    "VM.add_to_other_config": 4,
    "VM.remove_from_other_config": 3,
    "VM.get_name_label": 2,
    "VM.get_domid": 2,
    "VM.get_domain_type": 2,
    "VM.destroy": 2,
    "VM.get_blocked_operations": 2,
    "VM.add_to_blocked_operations": 4,
    "VM.remove_from_blocked_operations": 3,
    "VM.pool_migrate": 4,
    "VM.get_all": 1,
    "VM.get_uuid": 2,
    "VM.get_power_state": 2,
    "VM.get_resident_on": 2,
    "VM.start_on": 5,
    "host.get_resident_VMs": 2,
    "host.evacuate": 2,
    "host.get_all": 1,
    "host.call_plugin": 5,
    "host.get_by_uuid": 2,
    "host.get_name_label": 2,
    "host.get_uuid": 2,
    "host.get_other_config": 2,
    "host.add_to_other_config": 4,
    "host.remove_from_other_config": 3,
    "pool.get_all": 1,
    "pool.get_master": 2,
    "pool.get_other_config": 2,
    "pool.add_to_other_config": 4,
    "pool.remove_from_other_config": 3,
}


class XenAPIFailure(Exception):
    def __init__(self, *desc):
        super().__init__(desc)
        self.desc = [str(d) for d in desc]


# --------------------------------------------------------------------------
# xapi's plugin rules
#
# Xml.parse_string (ocaml/libs/xml-light2/xml.ml): Xmlm underneath, the
# tree is Element (tag, attrs, children) | PCData; `_parse` drops children
# that are PCData of only ' ', '\n' and '\t' (is_empty); comments and PIs
# leave no node; Xmlm.input_doc_tree reads the root element only, so bytes
# after it are never looked at.  Errors are Xml.Error, printed by
# Xml.error as "<message> line <n>".


class XmlError(Exception):
    pass


class Element:
    def __init__(self, tag, attrs):
        self.tag = tag
        self.attrs = attrs
        self.children = []


def xml_parse_string(data):
    """Xml.parse_string (xml-light2/xml.ml _parse, on Xmlm)."""
    stack, root, done = [], [], [False]
    text = []

    def flush():
        if text and stack:
            s = "".join(text)
            # xml.ml is_empty: whitespace-only PCData is no child
            if not all(c in " \n\t" for c in s):
                stack[-1].children.append(s)
        text.clear()

    def start(tag, attrs):
        if done[0]:
            raise XmlError("second root")
        flush()
        el = Element(tag, list(attrs.items()))
        if stack:
            stack[-1].children.append(el)
        else:
            root.append(el)
        stack.append(el)

    def end(tag):
        flush()
        stack.pop()
        if not stack:
            done[0] = True

    def doctype(*args):
        # Xmlm skips a DTD and then fails on any entity it declared; our
        # plugins never send one, so it is refused outright here.
        raise XmlError("DTD not supported by this test server")

    p = expat.ParserCreate("UTF-8")
    p.StartElementHandler = start
    p.EndElementHandler = end
    p.CharacterDataHandler = text.append
    p.StartDoctypeDeclHandler = doctype
    try:
        p.Parse(data, True)
    except expat.ExpatError as e:
        if not done[0]:  # after the root Xmlm reads nothing more
            raise XmlError("%s line %d" % (expat.ErrorString(e.code),
                                           e.lineno))
    except XmlError as e:
        if not done[0]:
            raise XmlError("%s line %d" % (e, p.CurrentLineNumber))
    if not root or not done[0]:
        raise XmlError("unexpected end of input line %d" %
                       p.CurrentLineNumber)
    return root[0]


class RunTimeTypeError(Exception):
    """XMLRPC.RunTimeTypeError, what xMLRPC.ml's rtte raises."""

    def __init__(self, name):
        super().__init__(name)
        self.name = name

    def printexc(self):
        # Printexc.to_string of RunTimeTypeError (name, xml): the string,
        # and _ for the Xml.xml (the module path may differ by build)
        return 'XMLRPC.RunTimeTypeError("%s", _)' % self.name


class OCamlExn(Exception):
    """Any other OCaml exception (Not_found, Failure ...), by its
    Printexc.to_string."""


def pretty(x):
    return ("Element=" + x.tag) if isinstance(x, Element) else "PCData=" + x


# xMLRPC.ml module From, function by function.
def unbox(ok, x):
    if isinstance(x, Element) and x.tag in ok and not x.attrs:
        return x.children
    raise RunTimeTypeError("unbox: %s should contain '%s'" % (pretty(x),
                                                              ok[0]))


def singleton(ok, x):
    c = unbox(ok, x)
    if len(c) == 1:
        return c[0]
    raise RunTimeTypeError("singleton: {%s} should be the singleton {%s}" %
                           (", ".join(pretty(y) for y in c), ok[0]))


def pair(ok, x):
    c = unbox(ok, x)
    if len(c) == 2:
        return c
    raise RunTimeTypeError("pair ")


def pcdata(x):
    if isinstance(x, str):
        return x
    raise RunTimeTypeError("pcdata")


def from_name(x):  # From.name
    c = unbox(["name"], x)
    if len(c) == 1 and isinstance(c[0], str):
        return c[0]
    if not c:
        return ""
    raise RunTimeTypeError("From.name: should contain PCData")


def from_string(x):  # From.string
    if isinstance(x, Element) and x.tag == "value" and not x.attrs:
        if len(x.children) == 1 and isinstance(x.children[0], str):
            return x.children[0]
        if not x.children:
            return ""
        c = x.children[0]
        if (len(x.children) == 1 and isinstance(c, Element) and
                c.tag == "string" and not c.attrs and not c.children):
            return ""
    return pcdata(singleton(["string"], singleton(["value"], x)))


def from_int(x):  # From.int: i4 or int, Int32.of_string
    s = pcdata(singleton(["i4", "int"], singleton(["value"], x)))
    try:
        n = int(s, 0)
        if -2**31 <= n < 2**31:
            return n
    except ValueError:
        pass
    raise OCamlExn('Failure("Int32.of_string")')


def structure(x):  # From.structure
    members = unbox(["struct"], singleton(["value"], x))
    out = []
    for m in members:
        k, v = pair(["member"], m)
        out.append((from_name(k), v))
    return out


def assoc(key, bindings):  # List.assoc: the first binding, or Not_found
    for k, v in bindings:
        if k == key:
            return v
    raise KeyError(key)


def from_array(x):  # From.array id
    return unbox(["data"], singleton(["array"], singleton(["value"], x)))


def status(x):  # From.status
    bindings = structure(x)
    try:
        st = from_string(assoc("Status", bindings))
        if st == "Success":
            return ("Success", [assoc("Value", bindings)])
        if st == "Failure":
            desc = from_array(assoc("ErrorDescription", bindings))
            if not desc:
                raise RunTimeTypeError("Empty array of error strings")
            return ("Failure", from_string(desc[0]),
                    [from_string(d) for d in desc[1:]])
        raise KeyError("Status")
    except KeyError:
        raise RunTimeTypeError("Status")


def method_response(x):  # From.methodResponse
    body = singleton(["methodResponse"], x)
    if isinstance(body, Element) and body.tag == "params":
        results = [singleton(["param"], p) for p in unbox(["params"], body)]
        if len(results) == 1:
            return status(results[0])
        raise RunTimeTypeError("Expected single return value (struct status)")
    if isinstance(body, Element) and body.tag == "fault":
        m = structure(singleton(["fault"], body))  # From.fault
        try:
            return ("Fault", from_int(assoc("faultCode", m)),
                    from_string(assoc("faultString", m)))
        except KeyError:
            raise OCamlExn("Not_found")  # aux's List.assoc: not caught
    raise RunTimeTypeError("response")


def judge(output, log):
    """xapi_plugins.ml call_plugin, after the plugin exited 0: the value
    returned, or XenAPIFailure as the caller sees it."""
    text = output.decode("utf-8", "replace")
    try:
        r = method_response(xml_parse_string(output))
    except XmlError as e:
        # `with Xml.Error e -> ... ["failed to parse plugin output"; ...]`
        raise XenAPIFailure("XENAPI_PLUGIN_FAILURE",
                            "failed to parse plugin output", text, str(e))
    except RunTimeTypeError as e:
        # not caught by call_plugin: ExnHelper.error_of_exn's catch-all
        raise XenAPIFailure("INTERNAL_ERROR", e.printexc())
    except OCamlExn as e:
        raise XenAPIFailure("INTERNAL_ERROR", str(e))
    if r[0] == "Fault":
        # `XMLRPC.Fault (code, reason) -> xenapi_plugin_failure ["fault"..]`
        raise XenAPIFailure("XENAPI_PLUGIN_FAILURE", "fault", str(r[1]),
                            r[2])
    if r[0] == "Failure":
        # `XMLRPC.Failure (code, params) -> Server_error (code, params)`
        raise XenAPIFailure(r[1], *r[2])
    # `XMLRPC.Success [result] -> XMLRPC.From.string result`
    try:
        return from_string(r[1][0])
    except RunTimeTypeError as e:
        raise XenAPIFailure("INTERNAL_ERROR", e.printexc())


def run_plugin(path, argv, env=None):
    """Forkhelpers.execute_command_get_output path argv, with the
    exceptions call_plugin maps (xapi_plugins.ml).  env: the host's (each
    host of a modelled pool runs its plugins in its own environment)."""
    try:
        p = subprocess.run([path] + argv, stdin=subprocess.DEVNULL, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=PLUGIN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise XenAPIFailure("INTERNAL_ERROR", "plugin timed out (test "
                            "server limit %ds)" % PLUGIN_TIMEOUT_S)
    except OSError as e:
        raise XenAPIFailure("INTERNAL_ERROR", "cannot run %s: %s" % (path, e))
    out = p.stdout.decode("utf-8", "replace")
    log = p.stderr.decode("utf-8", "replace")
    if p.returncode < 0:  # Unix.WSIGNALED
        raise XenAPIFailure("XENAPI_PLUGIN_FAILURE", "signal: %s" %
                            signal.Signals(-p.returncode).name, out, log)
    if p.returncode > 0:  # Unix.WEXITED _
        raise XenAPIFailure("XENAPI_PLUGIN_FAILURE", "non-zero exit", out,
                            log)
    return judge(p.stdout, p.stderr)


# What xapi hands the plugin: Xml.to_string (xml-light2/xml.ml to_fct,
# esc_pcdata) of XMLRPC.To.methodCall fn [To.string session;
# To.structure args] (xMLRPC.ml), To.string "" being <value/>.
def esc_pcdata(s):
    out = []
    for c in s:
        if c == ">":
            out.append("&gt;")
        elif c == "<":
            out.append("&lt;")
        elif c == "&":
            out.append("&amp;")
        elif c == '"':
            out.append("&quot;")
        elif c >= "\x20" or c in "\t\n\r":
            out.append(c)
    return "".join(out)


def to_string(v):
    return "<value/>" if v == "" else "<value>%s</value>" % esc_pcdata(v)


def xapi_method_call(session, fn, args):
    members = "".join("<member><name>%s</name>%s</member>" %
                      (esc_pcdata(k), to_string(v)) for k, v in args.items())
    st = "<struct>%s</struct>" % members if members else "<struct/>"
    return ("<methodCall><methodName>%s</methodName><params><param>%s"
            "</param><param><value>%s</value></param></params></methodCall>"
            % (esc_pcdata(fn), to_string(session), st))


class Xapi:
    def __init__(self, vms, state_path, sessions, plugin_dir=None,
                 hosts=None, pool_state=None, pool_oc=None):
        self.vms = vms
        self.state_path = state_path
        self.sessions = set(sessions)
        self.next_session = 1
        self.refs = {"OpaqueRef:vm-%d" % i: u for i, u in enumerate(vms)}
        self.calls = []
        self.plugin_dir = plugin_dir
        # the pool: host 0 is the master; every host's calls reach this
        # one database, as every xe command of a pool reaches the master's
        self.hosts = hosts or [{"name_label": "host-0",
                                "uuid": "00000000-0000-4000-8000-00000000f000"}]
        for h in self.hosts:
            h.setdefault("other_config", {})
            h.setdefault("env", {})
            h.setdefault("live", True)
        self.host_refs = ["OpaqueRef:host-%d" % i
                          for i in range(len(self.hosts))]
        self.pool = {"other_config": dict(pool_oc or {})}
        self.pool_state = pool_state
        self.lock = threading.Lock()

    def save(self):
        for path, what in ((self.state_path, lambda: self.vms),
                           (self.pool_state, self.pool_view)):
            if not path:
                continue
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(what(), f, indent=1, sort_keys=True)
            os.replace(tmp, path)

    def pool_view(self):
        return {"pool": self.pool,
                "hosts": [{k: h[k] for k in ("name_label", "uuid",
                                             "other_config", "live")}
                          for h in self.hosts]}

    def host(self, ref):
        if ref not in self.host_refs:
            raise XenAPIFailure("HANDLE_INVALID", "host", ref)
        return self.hosts[self.host_refs.index(ref)]

    def pool_obj(self, ref):
        if ref != POOL_REF:
            raise XenAPIFailure("HANDLE_INVALID", "pool", ref)
        return self.pool

    # Map fields (ocaml/idl: add_to_<map> refuses a key that exists with
    # MAP_DUPLICATE_KEY [class; field; ref; key]; remove_from_<map> of an
    # absent key does nothing).  Each runs under the database lock, so
    # two adds of one key cannot both succeed.
    def map_add(self, cls, ref, obj, key, value, field="other_config"):
        oc = obj.setdefault(field, {})
        if key in oc:
            raise XenAPIFailure("MAP_DUPLICATE_KEY", cls, field, ref, key)
        oc[key] = value
        self.save()
        return ""

    def map_remove(self, obj, key, field="other_config"):
        obj.setdefault(field, {}).pop(key, None)
        self.save()
        return ""

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
        # every method but host.call_plugin under the lock: a plugin's own
        # calls are served by other threads while call_plugin waits
        if method == "host.call_plugin":
            self.check(method, params)
            return self.m_host_call_plugin(*params)
        with self.lock:
            return self.call_locked(method, params)

    def check(self, method, params):
        if method not in ARITY:
            raise XenAPIFailure("MESSAGE_METHOD_UNKNOWN", method)
        if len(params) != ARITY[method]:
            raise XenAPIFailure("MESSAGE_PARAMETER_COUNT_MISMATCH", method,
                                ARITY[method], len(params))
        strings = params[:3] if method in ("VM.pool_migrate",
                                           "VM.start_on") else params
        if method != "host.call_plugin" and \
                not all(isinstance(p, str) for p in strings):
            raise XenAPIFailure("FIELD_TYPE_ERROR", method)
        if method == "VM.start_on" and \
                not all(isinstance(p, bool) for p in params[3:]):
            raise XenAPIFailure("FIELD_TYPE_ERROR", method)
        if method == "VM.pool_migrate" and not (
                isinstance(params[3], dict) and
                all(isinstance(v, str) for v in params[3].values())):
            raise XenAPIFailure("FIELD_TYPE_ERROR", method)
        if not isinstance(params[0], str) or params[0] not in self.sessions:
            raise XenAPIFailure("SESSION_INVALID", str(params[0]))

    def call_locked(self, method, params):
        self.calls.append(method)
        if method == "session.login_with_password":
            return self.login(params)
        self.check(method, params)
        return getattr(self, "m_" + method.replace(".", "_"))(*params[1:])

    def m_host_get_all(self):
        return list(self.host_refs)

    def m_host_get_by_uuid(self, uuid):
        for ref, h in zip(self.host_refs, self.hosts):
            if h["uuid"] == uuid.lower():
                return ref
        raise XenAPIFailure("UUID_INVALID", "host", uuid)

    def m_host_get_name_label(self, ref):
        return self.host(ref)["name_label"]

    def m_host_get_uuid(self, ref):
        return self.host(ref)["uuid"]

    def m_host_get_other_config(self, ref):
        return dict(self.host(ref)["other_config"])

    def m_host_add_to_other_config(self, ref, key, value):
        return self.map_add("host", ref, self.host(ref), key, value)

    def m_host_remove_from_other_config(self, ref, key):
        return self.map_remove(self.host(ref), key)

    def m_pool_get_all(self):
        return [POOL_REF]

    def m_pool_get_master(self, ref):
        self.pool_obj(ref)
        return self.host_refs[0]

    def m_pool_get_other_config(self, ref):
        return dict(self.pool_obj(ref)["other_config"])

    def m_pool_add_to_other_config(self, ref, key, value):
        return self.map_add("pool", ref, self.pool_obj(ref), key, value)

    def m_pool_remove_from_other_config(self, ref, key):
        return self.map_remove(self.pool_obj(ref), key)

    def m_host_call_plugin(self, session, host, plugin, fn, args):
        if not all(isinstance(p, str) for p in (host, plugin, fn)) or \
                not isinstance(args, dict) or \
                not all(isinstance(k, str) and isinstance(v, str)
                        for k, v in args.items()):
            raise XenAPIFailure("FIELD_TYPE_ERROR", "host.call_plugin")
        with self.lock:
            h = self.host(host)
            if not h["live"]:
                # message_forwarding.ml: a call forwarded to a host that
                # is not live fails with HOST_OFFLINE [host]
                raise XenAPIFailure("HOST_OFFLINE", host)
            env = dict(os.environ, **h["env"])
        # xapi_plugins.ml find_plugin: only a name the plugin folder lists
        try:
            names = os.listdir(self.plugin_dir) if self.plugin_dir else []
        except OSError:
            names = []
        if plugin not in names:
            raise XenAPIFailure("XENAPI_MISSING_PLUGIN", plugin)
        return run_plugin(os.path.join(self.plugin_dir, plugin),
                          [xapi_method_call(session, fn, args)], env)

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
        return self.map_add("VM", ref, self.vm(ref), key, value)

    def m_VM_remove_from_other_config(self, ref, key):
        return self.map_remove(self.vm(ref), key)

    def m_VM_get_name_label(self, ref):
        return self.vm(ref).get("name_label", "")

    def m_VM_get_domid(self, ref):
        return str(self.vm(ref).get("domid", "-1"))

    def m_VM_destroy(self, ref):
        # xapi_vm.ml destroy: only a halted VM (power-state check of
        # xapi_vm_lifecycle: VM_BAD_POWER_STATE [ref; expected; actual])
        vm = self.vm(ref)
        if str(vm.get("domid", "-1")) != "-1":
            raise XenAPIFailure("VM_BAD_POWER_STATE", ref, "halted",
                                "running")
        del self.vms[self.refs.pop(ref)]
        self.save()
        return ""

    # datamodel_vm.ml: blocked_operations is a (vm_operations -> string)
    # map; a key that is no vm_operations name fails to unmarshal.
    VM_OPERATIONS = (
        "snapshot clone copy create_template revert checkpoint "
        "snapshot_with_quiesce provision start start_on pause unpause "
        "clean_shutdown clean_reboot hard_shutdown power_state_reset "
        "hard_reboot suspend csvm resume resume_on pool_migrate "
        "migrate_send get_boot_record send_sysrq send_trigger "
        "query_services shutdown call_plugin destroy export import").split()

    def m_VM_get_blocked_operations(self, ref):
        return dict(self.vm(ref).setdefault("blocked_operations", {}))

    def m_VM_add_to_blocked_operations(self, ref, key, value):
        if key not in self.VM_OPERATIONS:
            raise XenAPIFailure("ENUM_VALUE_INVALID", "vm_operations", key)
        return self.map_add("VM", ref, self.vm(ref), key, value,
                            "blocked_operations")

    def m_VM_remove_from_blocked_operations(self, ref, key):
        if key not in self.VM_OPERATIONS:
            raise XenAPIFailure("ENUM_VALUE_INVALID", "vm_operations", key)
        return self.map_remove(self.vm(ref), key, "blocked_operations")

    def resident_on(self, vm):
        """The host ref a running VM is resident on, or None."""
        if str(vm.get("domid", "-1")) == "-1":
            return None
        name = vm.get("resident_on")
        for ref, h in zip(self.host_refs, self.hosts):
            if name is None or h["name_label"] == name:
                return ref
        return None

    def m_host_get_resident_VMs(self, ref):
        self.host(ref)
        return [r for r, u in self.refs.items()
                if self.resident_on(self.vms[u]) == ref]

    def operation_error(self, ref, op):
        """xapi_vm_lifecycle.get_operation_error, the parts modelled."""
        vm = self.vm(ref)
        blocked = vm.get("blocked_operations", {})
        if op in blocked:
            return ("OPERATION_BLOCKED", ref, blocked[op])
        if op == "pool_migrate" and self.resident_on(vm) is None:
            return ("VM_BAD_POWER_STATE", ref, "running", "halted")
        return None

    def m_VM_pool_migrate(self, ref, host, options):
        err = self.operation_error(ref, "pool_migrate")
        if err:
            raise XenAPIFailure(*err)
        h = self.host(host)
        if not h["live"]:
            raise XenAPIFailure("HOST_OFFLINE", host)
        self.vm(ref)["resident_on"] = h["name_label"]
        self.save()
        return ""

    def m_VM_get_all(self):
        return list(self.refs)

    def m_VM_get_uuid(self, ref):
        self.vm(ref)
        return self.refs[ref]

    def m_VM_get_power_state(self, ref):
        running = str(self.vm(ref).get("domid", "-1")) != "-1"
        return "Running" if running else "Halted"

    def m_VM_get_resident_on(self, ref):
        return self.resident_on(self.vm(ref)) or "OpaqueRef:NULL"

    def m_VM_start_on(self, ref, host, start_paused, force):
        # message_forwarding.ml start_on: OPERATION_BLOCKED, then the
        # power state (VM_BAD_POWER_STATE [ref; halted; running]), then
        # the host's checks; xenopsd's hooks are not modelled
        vm = self.vm(ref)
        if "start_on" in vm.get("blocked_operations", {}):
            raise XenAPIFailure("OPERATION_BLOCKED", ref,
                                vm["blocked_operations"]["start_on"])
        if str(vm.get("domid", "-1")) != "-1":
            raise XenAPIFailure("VM_BAD_POWER_STATE", ref, "halted",
                                "running")
        h = self.host(host)
        if not h["live"]:
            raise XenAPIFailure("HOST_OFFLINE", host)
        used = [int(v.get("domid", -1)) for v in self.vms.values()]
        vm["domid"] = str(max(used + [0]) + 1)
        vm["resident_on"] = h["name_label"]
        self.save()
        return ""

    def m_host_evacuate(self, ref):
        # xapi_host.ml compute_evacuation_plan_no_wlb, then evacuate: the
        # plan's first error is raised before any VM moves
        vms = self.m_host_get_resident_VMs(ref)
        targets = [r for r, h in zip(self.host_refs, self.hosts)
                   if r != ref and h["live"]]
        for vm in vms:
            if not targets:
                raise XenAPIFailure("NO_HOSTS_AVAILABLE", vm)
            err = self.operation_error(vm, "pool_migrate")
            if err:
                raise XenAPIFailure(*err)
        for vm in vms:
            self.vm(vm)["resident_on"] = self.host(targets[0])["name_label"]
        self.save()
        return ""

    def m_VM_get_domain_type(self, ref):
        # xapi's datamodel: one of hvm, pv, pv_in_pvh, pvh, unspecified
        return self.vm(ref).get("domain_type", "hvm")


class Handler(SimpleXMLRPCRequestHandler):
    rpc_paths = ()  # any path, as xapi
    disable_nagle_algorithm = False  # TCP_NODELAY fails on unix sockets

    def address_string(self):
        return "client"

    def log_request(self, code="-", size="-"):
        pass

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        """--answer-style: how the HTTP answer is framed, so the client's
        every way of reading a body (and of refusing one) is exercised."""
        style = self.server.answer_style
        if style == "length":
            return super().do_POST()
        data = self.rfile.read(int(self.headers.get("content-length", 0)))
        body = self.server._marshaled_dispatch(data)
        w = self.wfile.write
        if style == "garbage":
            w(b"SPDY/9 what\r\n\r\n")
            self.close_connection = True
            return
        if style == "continue":
            w(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        if style == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(body), 7):
                part = body[i:i + 7]
                w(b"%x;ext=1\r\n%s\r\n" % (len(part), part))
            w(b"0\r\nX-Trailer: t\r\n\r\n")
        elif style == "close":
            self.send_header("Connection", "close")
            self.end_headers()
            w(body)
            self.close_connection = True
        elif style == "huge":
            self.send_header("Content-Length", "2000000")
            self.end_headers()
            self.close_connection = True
        else:  # continue
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            w(body)


ANSWER_STYLES = ("length", "chunked", "close", "continue", "huge", "garbage")


class Dispatcher(SimpleXMLRPCDispatcher):
    def __init__(self, xapi, typed, answer_style="length"):
        super().__init__(allow_none=False, encoding="utf-8")
        self.xapi = xapi
        self.typed = typed
        self.answer_style = answer_style

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


class TCPServer(socketserver.ThreadingTCPServer, Dispatcher):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, addr, xapi, typed, style):
        Dispatcher.__init__(self, xapi, typed, style)
        socketserver.ThreadingTCPServer.__init__(self, addr, Handler)


class UnixServer(socketserver.ThreadingUnixStreamServer, Dispatcher):
    daemon_threads = True

    def __init__(self, path, xapi, typed, style):
        Dispatcher.__init__(self, xapi, typed, style)
        socketserver.ThreadingUnixStreamServer.__init__(self, path, Handler)


# ------------------------------------------------------------ client modes
class UnixTransport(xmlrpc.client.Transport):
    """XML-RPC over HTTP over a unix socket (xapi's local socket)."""

    def __init__(self, path):
        super().__init__()
        self.sock_path = path

    def make_connection(self, host):
        conn = http.client.HTTPConnection("localhost")
        path = self.sock_path

        def connect():
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            conn.sock = s
        conn.connect = connect
        return conn


def report(fn):
    try:
        print("OK " + fn())
    except XenAPIFailure as e:
        print("FAILURE " + json.dumps(e.desc))
    return 0


def kv_args(kvs):
    args = {}
    for kv in kvs:
        k, sep, v = kv.partition("=")
        if not sep:
            sys.exit("not KEY=VALUE: %r" % kv)
        args[k] = v
    return args


def proxy_for(url):
    if url.startswith("unix:"):
        return xmlrpc.client.ServerProxy(
            "http://localhost/", transport=UnixTransport(url[5:]))
    return xmlrpc.client.ServerProxy(url)


def call_main(argv):
    """call URL SESSION METHOD [ARG]...: one XenAPI call, string args."""
    if len(argv) < 3:
        sys.exit("usage: call URL SESSION METHOD [ARG]...")
    url, session, method = argv[:3]
    proxy = proxy_for(url)

    # json:VALUE passes a list or map (VM.pool_migrate's options)
    args = [json.loads(a[5:]) if a.startswith("json:") else a
            for a in argv[3:]]

    def go():
        r = getattr(proxy, method)(session, *args)
        if r.get("Status") == "Success":
            v = r["Value"]
            return v if isinstance(v, str) else json.dumps(v, sort_keys=True)
        raise XenAPIFailure(*r.get("ErrorDescription", ["?"]))
    try:
        return report(go)
    except (OSError, http.client.HTTPException,
            xmlrpc.client.Error) as e:
        print("cannot reach the XenAPI server at %s: %s" % (url, e),
              file=sys.stderr)
        return 2


def call_plugin_main(argv):
    """call-plugin [--host=NAME] URL SESSION PLUGIN FN [K=V]...: as
    xe host-call-plugin host-uuid=<NAME's> (the first host by default)."""
    on = None
    if argv and argv[0].startswith("--host="):
        on = argv.pop(0)[len("--host="):]
    if len(argv) < 4:
        sys.exit("usage: call-plugin [--host=NAME] URL SESSION PLUGIN FN "
                 "[KEY=VALUE]...")
    url, session, plugin, fn = argv[:4]
    args = kv_args(argv[4:])
    proxy = proxy_for(url)

    def call(method, *params):
        r = getattr(proxy, method)(*params)
        if r.get("Status") == "Success":
            return r["Value"]
        raise XenAPIFailure(*r.get("ErrorDescription", ["?"]))

    def go():
        hosts = call("host.get_all", session)
        if on is not None:
            hosts = [h for h in hosts
                     if call("host.get_name_label", session, h) == on]
            if not hosts:
                raise XenAPIFailure("TEST_NO_SUCH_HOST", on)
        return call("host.call_plugin", session, hosts[0], plugin, fn, args)
    try:
        return report(go)
    except (OSError, http.client.HTTPException,
            xmlrpc.client.Error) as e:
        print("cannot reach the XenAPI server at %s: %s" % (url, e),
              file=sys.stderr)
        return 2


def run_plugin_main(argv):
    """run-plugin PATH call SESSION FN [K=V]... | run-plugin PATH argv ..."""
    if len(argv) >= 4 and argv[1] == "call":
        path, _, session, fn = argv[:4]
        args = [xapi_method_call(session, fn, kv_args(argv[4:]))]
    elif len(argv) >= 2 and argv[1] == "argv":
        path, args = argv[0], argv[2:]
    else:
        sys.exit("usage: run-plugin PATH (call SESSION FN [K=V]... | "
                 "argv [ARG]...)")
    return report(lambda: run_plugin(path, args))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "call-plugin":
        return call_plugin_main(sys.argv[2:])
    if len(sys.argv) > 1 and sys.argv[1] == "call":
        return call_main(sys.argv[2:])
    if len(sys.argv) > 1 and sys.argv[1] == "run-plugin":
        return run_plugin_main(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vms", required=True)
    ap.add_argument("--state")
    ap.add_argument("--session", action="append", default=[])
    ap.add_argument("--typed-strings", action="store_true")
    ap.add_argument("--plugin-dir")
    ap.add_argument("--answer-style", choices=ANSWER_STYLES, default="length")
    ap.add_argument("--hosts")
    ap.add_argument("--pool-state")
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--unix")
    where.add_argument("--port", type=int)
    a = ap.parse_args()

    with open(a.vms) as f:
        vms = {u.lower(): v for u, v in json.load(f).items()}
    hosts = None
    if a.hosts:
        with open(a.hosts) as f:
            hosts = json.load(f)
    xapi = Xapi(vms, a.state, a.session, a.plugin_dir, hosts, a.pool_state)
    xapi.save()
    if a.unix:
        if os.path.exists(a.unix):
            os.unlink(a.unix)
        srv = UnixServer(a.unix, xapi, a.typed_strings, a.answer_style)
        url = "unix:" + a.unix
    else:
        srv = TCPServer(("127.0.0.1", a.port), xapi, a.typed_strings,
                        a.answer_style)
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
