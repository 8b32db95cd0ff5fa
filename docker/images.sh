#!/usr/bin/env bash
# Build crmlink's Docker images (make images):
#   crmlink/asterisk        Asterisk 22 (Debian sid) + asterisk-conf/     docker/Dockerfile.asterisk
#   crmlink/redis           redis-server, redis-sentinel (Debian sid)      docker/Dockerfile.redis
#   crmlink/haproxy         HAProxy (Debian sid), with `images.sh cluster`  docker/Dockerfile.haproxy
#   crmlink/crmlink         static crmlink on an empty base                docker/Dockerfile.crmlink
#   crmlink/amocrm-sandbox  the amoCRM emulator seeded with demo/seed.yaml docker/Dockerfile.crmlink
#
# The Debian base comes from a registry where one answers (debian:sid, pulled with a short
# timeout) and from the rig's debootstrapped root filesystem otherwise (docker/rig.sh
# rootfs, imported as the local image crmlink/asterisk-sid, as the rig does). Environment:
#   CRMLINK_IMAGE_BASE=auto|registry|rootfs   which base (default auto: try the registry)
#   CRMLINK_REGISTRY_BASE=debian:sid          the registry image to start from
#   CRMLINK_IMAGE_TAG=<version>               the binaries' version, also an image tag on a
#                                             clean tree (default: git describe)
#   CRMLINK_CACHE                             the rig's cache (default ~/.cache/crmlink)
#   CRMLINK_IMAGE_PREFIX=crmlink              the images' repository prefix: a test that
#                                             must not share images with another checkout
#                                             builds its own (make test-cluster: crmlink-cluster)
# `images.sh cluster` also builds the HAProxy image of deploy/cluster/compose.yaml.
# Run again, it reuses the base, Docker's layer cache and Go's build cache.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cache=${CRMLINK_CACHE:-$HOME/.cache/crmlink}
rootfs=$cache/rootfs-sid
rootfs_image=crmlink/asterisk-sid
registry_base=${CRMLINK_REGISTRY_BASE:-debian:sid}
mode=${CRMLINK_IMAGE_BASE:-auto}
prefix=${CRMLINK_IMAGE_PREFIX:-crmlink}
tag=${CRMLINK_IMAGE_TAG:-$(git -C "$here" describe --tags --always --dirty 2>/dev/null || echo dev)}

say() { printf 'images: %s\n' "$*" >&2; }

if ! timeout 10 docker info >/dev/null 2>&1; then
	say "docker info does not answer: start Docker (the rig itself also runs without it: make sandbox-up)"
	exit 1
fi

# The same import as docker/rig.sh: the image is the root filesystem as it is, labelled
# with the build it came from.
import_rootfs() {
	"$here/docker/rig.sh" rootfs
	local stamp
	stamp=$(stat -c %Y "$rootfs/usr/sbin/asterisk")
	if [ "$(docker image inspect -f '{{index .Config.Labels "rootfs"}}' "$rootfs_image" 2>/dev/null)" = "$stamp" ]; then
		return 0
	fi
	say "importing the root filesystem as docker image $rootfs_image (once)"
	tar -C "$rootfs" -c . | docker import -c "LABEL rootfs=$stamp" -c 'CMD ["asterisk","-f"]' - "$rootfs_image" >/dev/null
}

apt_opts=""
case "$mode" in
registry)
	say "pulling $registry_base"
	docker pull "$registry_base" >/dev/null
	base=$registry_base
	;;
rootfs)
	import_rootfs
	base=$rootfs_image
	;;
auto)
	if timeout 20 docker pull "$registry_base" >/dev/null 2>&1; then
		say "base: $registry_base from the registry"
		base=$registry_base
	else
		say "base: no registry answers for $registry_base; using the debootstrapped root filesystem"
		import_rootfs
		base=$rootfs_image
	fi
	;;
*)
	say "CRMLINK_IMAGE_BASE is '$mode'; allowed: auto, registry, rootfs"
	exit 2
	;;
esac
if [ "$base" = "$rootfs_image" ]; then
	# debootstrap may have used a frozen snapshot mirror whose Release file has expired.
	apt_opts="-o Acquire::Check-Valid-Until=false"
fi

# A build context with only what the images need (the repository also holds .git, bin/
# and results): the binaries, the sample configuration and the demo seed.
ctx=$cache/images/$prefix/context
rm -rf "$ctx"
mkdir -p "$cache/images/$prefix"
mkdir -p "$ctx/bin" "$ctx/docker" "$ctx/demo"
say "building static binaries (CGO_ENABLED=0, version $tag)"
for cmd in crmlink amocrm-sandbox; do
	(cd "$here" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$tag" -o "$ctx/bin/$cmd" "./cmd/$cmd")
done
cp -r "$here/asterisk-conf" "$ctx/asterisk-conf"
cp "$here/docker/asterisk-entrypoint.sh" "$ctx/docker/"
cp "$here/demo/seed.yaml" "$ctx/demo/"

# build NAME DOCKERFILE [ARGS...]: host network, because apt inside the build needs the
# network and some hosts give build containers none.
build() {
	local name=$1 file=$2
	shift 2
	say "building $name ($file)"
	local start=$SECONDS log=$cache/images/$prefix/build-${name##*/}.log tags=(-t "$name:latest")
	# A version tag only for a clean tree: a tag per edit would pile up.
	case "$tag" in *-dirty | dev) ;; *) tags+=(-t "$name:$tag") ;; esac
	if ! docker build --network host -f "$here/docker/$file" \
		--build-arg "BASE=$base" --build-arg "APT_OPTS=$apt_opts" \
		"${tags[@]}" "$@" "$ctx" >"$log" 2>&1; then
		say "docker build of $name failed; the end of its log ($log):"
		tail -n 30 "$log" >&2
		exit 1
	fi
	say "  $name:latest ($((SECONDS - start)) s)"
}
build "$prefix/asterisk" Dockerfile.asterisk
build "$prefix/redis" Dockerfile.redis
build "$prefix/crmlink" Dockerfile.crmlink --target crmlink
build "$prefix/amocrm-sandbox" Dockerfile.crmlink --target amocrm-sandbox
if [ "${1:-}" = cluster ]; then
	build "$prefix/haproxy" Dockerfile.haproxy
fi
docker images --format '  {{.Repository}}:{{.Tag}}  {{.Size}}' | grep -E "^  $prefix/(asterisk|redis|crmlink|amocrm-sandbox|haproxy):latest" >&2 || true
say "done (base $base)"
