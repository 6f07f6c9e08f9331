# pbxfleet images, every one FROM scratch: no base image is pulled, so they build
# on a Docker engine with no registry. The build context is not this directory
# but the one scripts/images.sh prepares (static binaries in bin/, the empty
# directory tree in rootfs/):
#
#   scripts/images.sh              # builds pbxfleet/{pbxfleet,pbx-node,agents-node,nats-server}:dev
#
# scratch has no shell, no /tmp, no CA certificates and no users: the processes
# run as root, the directories they need come from rootfs/, and NATS TLS needs
# its CA mounted and named in the agent config (tls_ca).

# base: the directory tree every image needs (/tmp, /etc/asterisk,
# /var/run/asterisk, /var/lib/pbxfleet, /etc/pbxfleet, /data).
FROM scratch AS base
COPY rootfs/ /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# pbxfleet: the operator CLI, the control plane (serve) and the lab (lab host).
# The same binary is also /usr/sbin/asterisk (`asterisk -rx` against the lab
# host's control socket) and /usr/bin/docker (`docker exec` through a mounted
# /var/run/docker.sock): it acts on the name it is called by. Copies, not
# symlinks.
FROM base AS pbxfleet
COPY bin/pbxfleet /usr/bin/pbxfleet
ENTRYPOINT ["/usr/bin/pbxfleet"]
CMD ["--help"]

# The lab (lab hosts of the compose fleet); as asterisk and docker it is the
# agents' CLI client of a lab host.
FROM base AS pbxlab
COPY bin/pbxlab /usr/bin/pbxlab
COPY bin/pbxlab /usr/sbin/asterisk
COPY bin/pbxlab /usr/bin/docker
ENTRYPOINT ["/usr/bin/pbxlab"]
CMD ["--help"]

# pbx-node: the Issabel agent. /usr/sbin/asterisk is the lab CLI client, for a
# lab host whose control socket is shared through a volume.
FROM base AS pbx-node
COPY bin/pbx-node /usr/bin/pbx-node
COPY bin/pbxlab /usr/sbin/asterisk
ENTRYPOINT ["/usr/bin/pbx-node"]
CMD ["--config", "/etc/pbxfleet/agent.yaml"]

# agents-node: the OMniLeads agent. Besides the asterisk client it has the
# docker shim, so the seed's `docker exec oml-asterisk-prodenv asterisk -rx`
# works through a mounted /var/run/docker.sock.
FROM base AS agents-node
COPY bin/agents-node /usr/bin/agents-node
COPY bin/pbxlab /usr/sbin/asterisk
COPY bin/pbxlab /usr/bin/docker
ENTRYPOINT ["/usr/bin/agents-node"]
CMD ["--config", "/etc/pbxfleet/agent.yaml"]

# nats-server: the upstream NATS server, built from the version in go.mod.
FROM base AS nats-server
COPY bin/nats-server /usr/bin/nats-server
EXPOSE 4222 7422 8222
ENTRYPOINT ["/usr/bin/nats-server"]
