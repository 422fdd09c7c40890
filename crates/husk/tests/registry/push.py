# Pushes an image through the registry API (tests/registry.rs' zstd case, which skopeo 1.9
# cannot write): argv = REGISTRY REPO TAG CONFIG LAYER... where each LAYER is a compressed blob
# file whose media type follows its name (.zst: tar+zstd, .gz: tar+gzip).
import hashlib, json, sys, urllib.request

reg, repo, tag, config, layers = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]


def upload(path):
    data = open(path, "rb").read()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    r = urllib.request.urlopen(urllib.request.Request(f"http://{reg}/v2/{repo}/blobs/uploads/", method="POST"))
    loc = r.headers["Location"]
    if loc.startswith("/"):
        loc = f"http://{reg}{loc}"
    sep = "&" if "?" in loc else "?"
    urllib.request.urlopen(urllib.request.Request(f"{loc}{sep}digest={digest}", data=data, method="PUT",
                                                  headers={"Content-Type": "application/octet-stream"}))
    return {"digest": digest, "size": len(data)}


types = {".zst": "application/vnd.oci.image.layer.v1.tar+zstd", ".gz": "application/vnd.oci.image.layer.v1.tar+gzip"}
manifest = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": dict(upload(config), mediaType="application/vnd.oci.image.config.v1+json"),
    "layers": [dict(upload(l), mediaType=types[l[l.rindex("."):]]) for l in layers],
}
urllib.request.urlopen(urllib.request.Request(
    f"http://{reg}/v2/{repo}/manifests/{tag}", data=json.dumps(manifest).encode(), method="PUT",
    headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"}))
