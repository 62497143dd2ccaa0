# Arcus built-in Python runtime client: runs `_HANDLER` (`module.function`) against the
# AWS Lambda Runtime API (2018-06-01) at AWS_LAMBDA_RUNTIME_API, as Lambda's Python
# runtime does. Standard library only; started with `-S` to keep start-up small.
import json
import os
import socket
import sys
import time

sys.stdout.reconfigure(line_buffering=True)
API = os.environ.get("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")
BASE = "/2018-06-01/runtime"
TASK_ROOT = os.environ.get("LAMBDA_TASK_ROOT", "/var/task")


def _paths():
    opt = "/opt/python"
    extra = [TASK_ROOT, opt]
    site = "%s/lib/python%d.%d/site-packages" % (opt, sys.version_info[0], sys.version_info[1])
    if os.path.isdir(site):
        extra.append(site)
    for p in reversed(extra):
        if p in sys.path:
            sys.path.remove(p)
        sys.path.insert(0, p)
    # Without `site`, .pth files of the dependency dirs are processed only on demand.
    for d in (opt, site):
        try:
            if any(n.endswith(".pth") for n in os.listdir(d)):
                import site as _site

                _site.addsitedir(d)
        except OSError:
            pass


class _Conn:
    """One keep-alive HTTP/1.1 connection to the Runtime API, reopened if the server
    drops it. A raw socket: `http.client` would import `email` and `ssl` (~20-40 ms)."""

    def __init__(self):
        self.s = None
        self.buf = b""

    def _connect(self):
        host, port = API.rsplit(":", 1)
        self.s = socket.create_connection((host, int(port)))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def request(self, method, path, body=b"", headers=None):
        head = "%s %s%s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n" % (method, BASE, path, API, len(body))
        for k, v in (headers or {}).items():
            head += "%s: %s\r\n" % (k, v)
        data = head.encode("latin-1") + b"\r\n" + body
        for attempt in (0, 1):
            try:
                if self.s is None:
                    self._connect()
                self.s.sendall(data)
                return self._read()
            except OSError:
                if self.s is not None:
                    self.s.close()
                self.s = None
                if attempt:
                    raise

    def _fill(self):
        d = self.s.recv(65536)
        if not d:
            raise ConnectionError("the runtime API closed the connection")
        self.buf += d

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _read(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                n = int(self._line().split(b";")[0], 16)
                if n == 0:
                    while self._line():
                        pass
                    break
                parts.append(self._take(n))
                self._take(2)
            body = b"".join(parts)
        else:
            body = self._take(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            self.s.close()
            self.s = None
        return status, headers, body


def _end(rid):
    """Prints the end mark of invocation `rid` on stdout and stderr (flushed), so the
    node knows it has read every line the invocation printed before the answer."""
    mark = "\x1earcus-end %s\x1e\n" % rid
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.write(mark)
            stream.flush()
        except (OSError, ValueError):
            pass  # a closed stream: the node waits a moment instead


def _post(conn, path, doc, error_type=None):
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    headers = {"Content-Type": "application/json"}
    if error_type:
        headers["Lambda-Runtime-Function-Error-Type"] = error_type
    status, _, resp = conn.request("POST", path, body, headers)
    if status >= 300:
        print("[ERROR] runtime API %s answered %d: %s" % (path, status, resp[:500].decode("utf-8", "replace")),
              file=sys.stderr)


def _init_error(conn, error_type, message, trace=None):
    print("[ERROR] %s: %s" % (error_type, message), file=sys.stderr)
    _post(conn, "/init/error",
          {"errorMessage": message, "errorType": error_type, "requestId": "", "stackTrace": trace or []},
          error_type)
    sys.exit(1)


def _load(conn, handler):
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        _init_error(conn, "Runtime.MalformedHandlerName", "Bad handler '%s': %s" % (handler, e))
    modname = modname.replace("/", ".")
    if modname in sys.builtin_module_names:
        _init_error(conn, "Runtime.BuiltInModuleConflict",
                    "Cannot use built-in module %s as a handler module" % modname)
    import importlib

    try:
        mod = importlib.import_module(modname)
    except ImportError as e:
        _init_error(conn, "Runtime.ImportModuleError", "Unable to import module '%s': %s" % (modname, e))
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s\n' % (e.filename, e.lineno, (e.text or "").strip())]
        _init_error(conn, "Runtime.UserCodeSyntaxError", "Syntax error in module '%s': %s" % (modname, e), trace)
    except Exception as e:
        import traceback

        tb = traceback.format_list(traceback.extract_tb(e.__traceback__)[1:])
        _init_error(conn, type(e).__name__, str(e), tb)
    fn = getattr(mod, fname, None)
    if fn is None:
        _init_error(conn, "Runtime.HandlerNotFound", "Handler '%s' missing on module '%s'" % (fname, modname))
    return fn


class _Obj:
    def __init__(self, **kw):
        self.__dict__.update(kw)

    def __repr__(self):
        return repr(self.__dict__)


class LambdaContext:
    """The `context` of a handler call, with Lambda's attribute names."""

    def __init__(self, request_id, deadline_ms, arn, client_context, identity):
        env = os.environ
        self.aws_request_id = request_id
        self.invoked_function_arn = arn
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self._deadline_ms = deadline_ms
        self.identity = None
        self.client_context = None
        if identity:
            d = json.loads(identity)
            self.identity = _Obj(cognito_identity_id=d.get("cognitoIdentityId"),
                                 cognito_identity_pool_id=d.get("cognitoIdentityPoolId"))
        if client_context:
            d = json.loads(client_context)
            self.client_context = _Obj(client=d.get("client"), custom=d.get("custom"), env=d.get("env"))

    def get_remaining_time_in_millis(self):
        return max(int(self._deadline_ms - time.time() * 1000), 0)

    def __repr__(self):
        return "LambdaContext(aws_request_id=%r, function_name=%r)" % (self.aws_request_id, self.function_name)


def _default(o):
    import decimal

    if isinstance(o, decimal.Decimal):
        return int(o) if o == o.to_integral_value() else float(o)
    raise TypeError("Object of type %s is not JSON serializable" % type(o).__name__)


def _assigned(conn):
    """A spare runtime (ARCUS_SPARE=1) starts before its function is known: it waits
    for the node to hand over the function's environment, then starts as any does."""
    global TASK_ROOT
    if os.environ.get("ARCUS_SPARE") != "1":
        return
    status, _, body = conn.request("GET", "/arcus/assignment")
    if status != 200:
        print("[ERROR] runtime API assignment answered %d" % status, file=sys.stderr)
        sys.exit(1)
    env = json.loads(body)
    os.environ.clear()
    os.environ.update(env)
    TASK_ROOT = os.environ.get("LAMBDA_TASK_ROOT", "/var/task")
    import importlib

    importlib.invalidate_caches()


def main():
    conn = _Conn()
    _assigned(conn)
    _paths()
    handler = _load(conn, os.environ.get("_HANDLER", ""))
    _end("init")  # what the module printed at import is start-up output
    while True:
        status, headers, event = conn.request("GET", "/invocation/next")
        if status != 200:
            print("[ERROR] runtime API next answered %d" % status, file=sys.stderr)
            sys.exit(1)
        h = headers
        rid = h.get("lambda-runtime-aws-request-id", "")
        trace = h.get("lambda-runtime-trace-id")
        if trace:
            os.environ["_X_AMZN_TRACE_ID"] = trace
        else:
            os.environ.pop("_X_AMZN_TRACE_ID", None)
        try:
            ctx = LambdaContext(rid, int(h.get("lambda-runtime-deadline-ms", "0")),
                                h.get("lambda-runtime-invoked-function-arn"),
                                h.get("lambda-runtime-client-context"),
                                h.get("lambda-runtime-cognito-identity"))
            result = handler(json.loads(event) if event else None, ctx)
        except Exception as e:
            import traceback

            frames = traceback.extract_tb(e.__traceback__)[1:]
            doc = {"errorMessage": str(e), "errorType": type(e).__name__, "requestId": rid,
                   "stackTrace": traceback.format_list(frames)}
            print("[ERROR] %s: %s\nTraceback (most recent call last):\n%s"
                  % (doc["errorType"], doc["errorMessage"], "".join(doc["stackTrace"])), end="", file=sys.stderr)
            _end(rid)
            _post(conn, "/invocation/%s/error" % rid, doc, "Unhandled")
            continue
        try:
            body = json.dumps(result, default=_default).encode()
        except Exception as e:
            doc = {"errorMessage": "Unable to marshal response: %s" % e, "errorType": "Runtime.MarshalError",
                   "requestId": rid, "stackTrace": []}
            _end(rid)
            _post(conn, "/invocation/%s/error" % rid, doc, "Unhandled")
            continue
        _end(rid)
        _post(conn, "/invocation/%s/response" % rid, body)


if __name__ == "__main__":
    main()
