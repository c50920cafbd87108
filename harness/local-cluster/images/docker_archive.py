"""Write a one-layer image as a docker-archive tarball (what `docker save` writes) from a folder.

The local cluster has no image registry and Docker belongs to someone else on this machine, so
its own images (pause, CoreDNS, local-path-provisioner, busybox) are packed here and handed to
`ctr images import`. Every file is owned by root and has a fixed mtime, so the same folder always
gives the same image ID.

    python3 docker_archive.py ROOTFS TAG OUT.tar --entrypoint /pause --user 65535
"""

import argparse
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

EPOCH = 0  # fixed mtime: reproducible layer digests


def layer_bytes(rootfs: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(rootfs.rglob("*")):
            info = tar.gettarinfo(str(path), arcname=str(path.relative_to(rootfs)))
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = EPOCH
            if info.isreg():
                with path.open("rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    return buf.getvalue()


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = EPOCH
    tar.addfile(info, io.BytesIO(data))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rootfs", type=Path)
    parser.add_argument("tag", help="image name with tag, e.g. localhost/harness/pause:3.10")
    parser.add_argument("out", type=Path)
    parser.add_argument("--entrypoint", nargs="+", required=True)
    parser.add_argument("--cmd", nargs="*", default=[])
    parser.add_argument("--user", default="", help="numeric uid[:gid]; empty means root")
    parser.add_argument("--env", action="append", default=["PATH=/usr/local/bin:/usr/bin:/bin"])
    args = parser.parse_args()

    layer = layer_bytes(args.rootfs)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {"Entrypoint": args.entrypoint, "Cmd": args.cmd or None, "User": args.user, "Env": args.env},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "harness/local-cluster/images"}],
    }
    config_json = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_name = hashlib.sha256(config_json).hexdigest() + ".json"
    layer_name = diff_id.removeprefix("sha256:") + "/layer.tar"
    manifest = [{"Config": config_name, "RepoTags": [args.tag], "Layers": [layer_name]}]

    tmp = args.out.with_suffix(".tmp")
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
        add_bytes(tar, config_name, config_json)
        add_bytes(tar, layer_name, layer)
        add_bytes(tar, "manifest.json", json.dumps(manifest).encode())
    os.replace(tmp, args.out)
    print(f"{args.tag} {config_name.removesuffix('.json')[:12]} {args.out}")


if __name__ == "__main__":
    main()
