#!/bin/sh
# Build the pbxfleet Docker images with no registry: static binaries built here
# (CGO_ENABLED=0), copied into images FROM scratch (see Dockerfile).
#
#   scripts/images.sh                 # pbxfleet/{pbxfleet,pbx-node,agents-node,nats-server}:dev
#   TAG=test scripts/images.sh        # another tag
#   IMAGES="pbxfleet" scripts/images.sh   # only some of them
#
# The upstream NATS server is built from the version pinned in go.mod
# (github.com/nats-io/nats-server/v2), so no nats image is pulled either.
set -eu

cd "$(dirname "$0")/.."
TAG=${TAG:-dev}
IMAGES=${IMAGES:-"pbxfleet pbxlab pbx-node agents-node nats-server"}
VERSION=${VERSION:-$(git describe --always --dirty 2>/dev/null || echo dev)}

ctx=$(mktemp -d "${TMPDIR:-/tmp}/pbxfleet-images.XXXXXX")
trap 'rm -rf "$ctx"' EXIT INT TERM

# The directories the programs need: scratch has none, and git keeps no empty ones.
for d in tmp etc/asterisk etc/pbxfleet var/run/asterisk var/lib/pbxfleet data; do
	mkdir -p "$ctx/rootfs/$d"
done
chmod 1777 "$ctx/rootfs/tmp"
mkdir -p "$ctx/bin"

export CGO_ENABLED=0
echo "images.sh: building static binaries ($VERSION)" >&2
go build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o "$ctx/bin/" ./cmd/pbxfleet ./cmd/pbxlab ./cmd/pbx-node ./cmd/agents-node
go build -trimpath -ldflags "-s -w" -o "$ctx/bin/nats-server" github.com/nats-io/nats-server/v2
cp Dockerfile "$ctx/Dockerfile"

for image in $IMAGES; do
	echo "images.sh: building pbxfleet/$image:$TAG" >&2
	docker build --quiet --target "$image" --tag "pbxfleet/$image:$TAG" "$ctx" >/dev/null
done
docker images --filter "reference=pbxfleet/*:$TAG" --format '{{.Repository}}:{{.Tag}}  {{.Size}}'
