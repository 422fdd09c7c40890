# A misbehaving front for the test registry (tests/registry.rs), inside the test's own network
# namespace: argv = LISTEN_PORT UPSTREAM_PORT MODE_FILE LOG_FILE. MODE_FILE is read on every
# request, so a test switches behaviour without a restart:
#   pass       forward everything
#   token      a Bearer gate (WWW-Authenticate challenge) with its token endpoint at /token,
#              which wants Basic user:secret
#   drop-once  the first GET of each blob without a Range header sends half and closes
#   drop       every GET of a blob over 64 KiB (a layer, not a config) sends half and closes
#   corrupt    blob bodies have their middle byte flipped (same length, wrong digest)
#   redirect   blob GETs answer 307 to /storage/<digest> on "localhost" (another host name: no
#              registry token may follow)
# Modes combine (a space-separated list): "token redirect" is a token registry whose blobs live
# elsewhere.
# LOG_FILE gets one line per request: METHOD PATH range=RANGE auth=SCHEME.
import base64, http.client, http.server, sys, threading

port, upstream, mode_file, log_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
TOKEN = "t0ken-for-husk"
dropped = set()
lock = threading.Lock()


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *a):
        pass

    def do_HEAD(self):
        self.do_GET(head=True)

    def do_GET(self, head=False):
        modes = set(open(mode_file).read().split())
        auth = self.headers.get("Authorization", "")
        with lock, open(log_file, "a") as f:
            f.write(f"{self.command} {self.path} range={self.headers.get('Range', '-')} auth={auth.split(' ')[0] or '-'}\n")
        if self.path.startswith("/token"):
            want = "Basic " + base64.b64encode(b"user:secret").decode()
            if auth != want:
                return self.reply(401, b'{"details":"bad credentials"}')
            return self.reply(200, ('{"token": "%s"}' % TOKEN).encode())
        storage = self.path.startswith("/storage/")
        if storage and auth:
            return self.reply(400, b"a registry credential was sent to the blob store")
        if "token" in modes and not storage and auth != "Bearer " + TOKEN:
            realm = f"http://127.0.0.1:{port}/token"
            return self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"token needed"}]}',
                              {"WWW-Authenticate": f'Bearer realm="{realm}",service="husk-test"'})
        path = self.path
        blob = "/blobs/sha256:" in path
        if "redirect" in modes and blob and not storage:
            loc = f"http://localhost:{port}/storage{path}"
            return self.reply(307, b"", {"Location": loc})
        if storage:
            path = path[len("/storage"):]
        c = http.client.HTTPConnection("127.0.0.1", upstream, timeout=30)
        hdrs = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection", "authorization")}
        c.request(self.command, path, headers=hdrs)
        r = c.getresponse()
        body = r.read()
        headers = {k: v for k, v in r.getheaders() if k.lower() not in ("connection", "transfer-encoding", "keep-alive", "content-length")}
        if blob and r.status in (200, 206) and not head:
            first = self.headers.get("Range") is None
            with lock:
                drop = ("drop" in modes and len(body) > 65536) or ("drop-once" in modes and first and path not in dropped)
                if drop:
                    dropped.add(path)
            if drop:
                self.send_response(r.status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.connection.shutdown(2)
                return
            if "corrupt" in modes and body:
                b = bytearray(body)
                b[len(b) // 2] ^= 0xFF
                body = bytes(b)
        self.reply(r.status, body, headers, head)

    def reply(self, status, body, headers=None, head=False):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)


http.server.ThreadingHTTPServer.daemon_threads = True
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
