# Writes a docker-archive (as `docker save` lays it out) from crafted layer tars, for the
# hostile-layer tests: argv = OUT NAME SPEC, SPEC a JSON list of layers, each a list of entries
# {"name", "type": file|dir|symlink|link|char|fifo, "data", "target", "mode", "major", "minor",
#  "xattrs": {NAME: HEX}, "from": a host file whose bytes are the data} (xattrs as PAX SCHILY.xattr.NAME records, as docker and GNU tar write them).
# A layer may carry "bad_diff_id": true to record a wrong diffID in the config.
import hashlib, io, json, sys, tarfile

out, name, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
types = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
         "link": tarfile.LNKTYPE, "char": tarfile.CHRTYPE, "fifo": tarfile.FIFOTYPE}
layers = []
for layer in spec:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for e in layer["entries"]:
            ti = tarfile.TarInfo(e["name"])
            ti.type = types[e.get("type", "file")]
            ti.mode = e.get("mode", 0o755 if ti.type == tarfile.DIRTYPE else 0o644)
            ti.linkname = e.get("target", "")
            ti.devmajor, ti.devminor = e.get("major", 0), e.get("minor", 0)
            ti.pax_headers = {"SCHILY.xattr." + k: bytes.fromhex(v).decode("utf-8", "surrogateescape")
                              for k, v in e.get("xattrs", {}).items()}
            data = open(e["from"], "rb").read() if "from" in e else e.get("data", "").encode()
            ti.size = len(data) if ti.type == tarfile.REGTYPE else 0
            t.addfile(ti, io.BytesIO(data) if ti.size else None)
    raw = buf.getvalue()
    d = hashlib.sha256(raw).hexdigest()
    layers.append((raw, d, layer.get("bad_diff_id", False)))
config = json.dumps({"architecture": "amd64", "os": "linux",
    "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + ("0" * 64 if bad else d) for _, d, bad in layers]}}).encode()
ch = hashlib.sha256(config).hexdigest()
with tarfile.open(out, "w") as t:
    def add(n, b):
        ti = tarfile.TarInfo(n); ti.size = len(b); t.addfile(ti, io.BytesIO(b))
    for raw, d, _ in layers:
        add(d + ".tar", raw)
    add(ch + ".json", config)
    add("manifest.json", json.dumps([{"Config": ch + ".json", "RepoTags": [name],
        "Layers": [d + ".tar" for _, d, _ in layers]}]).encode())
