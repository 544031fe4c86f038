# flowlens image with Docker: flowlens-agent, flowlens-collector and flowlens-slo on Debian 12.
# The supported build is `make image` (scripts/image.sh: no Docker, amd64 + arm64, smaller,
# with an SBOM, tested by tests/e2e/image.sh); this file is for Docker users and is not tested.
#   docker build --build-arg VERSION=$(git describe --always) -t <registry>/flowlens:<version> .
# The BPF objects are CO-RE, compiled against the pinned kernel types in bpf/vmlinux/: they
# load on any kernel with BTF (EKS AL2 5.10, AL2023 6.1/6.12, Bottlerocket).
FROM debian:12-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
	make gcc clang llvm pkg-config git ca-certificates bpftool libbpf-dev libelf-dev zlib1g-dev \
	libmicrohttpd-dev libjson-c-dev libmnl-dev uthash-dev libprotobuf-c-dev protobuf-c-compiler \
	libcurl4-openssl-dev libnetfilter-conntrack-dev libyaml-dev libssl-dev xz-utils \
	&& rm -rf /var/lib/apt/lists/*
ARG VERSION=unknown
WORKDIR /src
COPY . .
RUN make -j"$(nproc)" VERSION="$VERSION" build/flowlens-agent build/flowlens-collector build/flowlens-slo

FROM debian:12-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
	libbpf1 libelf1 zlib1g libmicrohttpd12 libjson-c5 libmnl0 libprotobuf-c1 libcurl4 \
	libnetfilter-conntrack3 libyaml-0-2 libssl3 ca-certificates \
	&& rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/flowlens-agent /src/build/flowlens-collector /src/build/flowlens-slo /usr/bin/
# The collector runs as 65532 (the chart sets it); the agent as root with only CAP_BPF,
# CAP_NET_ADMIN, CAP_PERFMON and CAP_SYS_RESOURCE.
USER 65532:65532
ENTRYPOINT ["/usr/bin/flowlens-collector"]
