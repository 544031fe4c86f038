# flowlens top-level build. `make` builds everything into build/; `make V=1` shows commands.
# `make SANITIZE=address,undefined` builds the user-space code with sanitizers.

.DELETE_ON_ERROR:
.SECONDARY:
.DEFAULT_GOAL := all

OUT      := build
CLANG    ?= clang
BPFTOOL  ?= bpftool
CC       ?= gcc
VERSION  := $(shell git describe --always --dirty 2>/dev/null || echo unknown)
# Rewritten only when the version changes: what prints or exports the version is rebuilt then
# (an image's binaries report the version its label names).
VERSION_STAMP := $(OUT)/version.stamp
$(shell mkdir -p $(OUT) && echo '$(VERSION)' | cmp -s - $(VERSION_STAMP) || echo '$(VERSION)' > $(VERSION_STAMP))

ifeq ($(V),1)
Q :=
msg =
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

ARCH     := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror -I$(OUT) -Ibpf

CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 -Wall -Wextra -Werror -I$(OUT) -I$(OUT)/proto -Ibpf -Ilib -Iagent -Icollector \
	    -DFLOWLENS_VERSION='"$(VERSION)"'
LDLIBS   := -lnghttp2 -lbpf -lelf -lz -lmicrohttpd -ljson-c -lmnl -lnetfilter_conntrack -lprotobuf-c -lcurl \
	    -lyaml -lcrypto -lpthread
ifneq ($(SANITIZE),)
CFLAGS   += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
LDFLAGS  += -fsanitize=$(SANITIZE)
endif

BPF_PROGS := flow flow_noct noop
BPF_OBJS  := $(patsubst %,$(OUT)/%.bpf.o,$(BPF_PROGS))
SKELS     := $(patsubst %,$(OUT)/%.skel.h,$(BPF_PROGS))

PROTO_H    := $(OUT)/proto/flowlens.pb-c.h
PROTO_OBJ  := $(OUT)/proto/flowlens.pb-c.o
LIB_SRCS   := $(wildcard lib/*.c)
AGENT_SRCS := $(wildcard agent/*.c)
COLL_SRCS  := $(wildcard collector/*.c)
LIB_OBJS   := $(patsubst %.c,$(OUT)/%.o,$(LIB_SRCS)) $(PROTO_OBJ)
AGENT_OBJS := $(patsubst %.c,$(OUT)/%.o,$(AGENT_SRCS))
COLL_OBJS  := $(patsubst %.c,$(OUT)/%.o,$(COLL_SRCS))
SLO_OBJS   := $(patsubst %.c,$(OUT)/%.o,$(wildcard slo/*.c))

BINS := $(OUT)/netpol.bpf.o $(OUT)/xdp_pass.bpf.o $(OUT)/flowlens-agent $(OUT)/flowlens-collector $(OUT)/flowlens-slo $(OUT)/flowlens-bench \
	$(OUT)/test-bpf $(OUT)/test-unit $(OUT)/mkbatch $(OUT)/collector-bench $(OUT)/flowlens-loadsim

.PHONY: readme-picture soak kernel-matrix debian12 arm64 image all deps test check-format format bench demo clean slo-rules deploy-manifests dashboards
all: $(BINS)

$(OUT) $(OUT)/agent $(OUT)/slo $(OUT)/lib $(OUT)/tests $(OUT)/bench $(OUT)/proto $(OUT)/collector:
	$(Q)mkdir -p $@

# Wire contract: C code generated from proto/flowlens.proto at build time.
$(OUT)/proto/flowlens.pb-c.c $(PROTO_H) &: proto/flowlens.proto | $(OUT)/proto
	$(call msg,PROTOC,$@)
	$(Q)protoc-c --c_out=$(OUT)/proto -Iproto $<

$(PROTO_OBJ): $(OUT)/proto/flowlens.pb-c.c $(PROTO_H)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Wno-unused-parameter -c $< -o $@

# vmlinux.h from a pinned kernel's BTF (Debian's 6.1 cloud kernel, bpf/vmlinux/SOURCE), never
# the build machine's: the objects are the same wherever they are built, and CO-RE relocates
# them on every kernel they load on. scripts/vmlinux-h.sh regenerates it.
$(OUT)/vmlinux.h: bpf/vmlinux/vmlinux.h.xz | $(OUT)
	$(call msg,GEN,$@)
	$(Q)xz -dc $< > $@.tmp && mv $@.tmp $@

$(OUT)/%.bpf.o: bpf/%.bpf.c bpf/*.h $(OUT)/vmlinux.h | $(OUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# Tests only: a stand-in for the VPC CNI network policy agent's TC programs.
$(OUT)/netpol.bpf.o: tests/tools/netpol.bpf.c $(OUT)/vmlinux.h | $(OUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# Tests only: XDP_PASS, to make a veth's driver counters move (tests/e2e/ethtool.sh).
$(OUT)/xdp_pass.bpf.o: tests/tools/xdp_pass.bpf.c $(OUT)/vmlinux.h | $(OUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# The same programs without the conntrack kfuncs, for kernels that lack them.
$(OUT)/flow_noct.bpf.o: bpf/flow.bpf.c bpf/*.h $(OUT)/vmlinux.h | $(OUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -DFL_NO_CT -c $< -o $@

$(OUT)/agent/main.o $(OUT)/agent/serve.o $(OUT)/agent/export.o $(OUT)/collector/main.o \
	$(OUT)/collector/serve.o $(OUT)/lib/optparse.o $(OUT)/slo/main.o: $(VERSION_STAMP)

$(OUT)/%.skel.h: $(OUT)/%.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $*_bpf > $@

$(OUT)/lib/%.o: lib/%.c lib/*.h $(PROTO_H) | $(OUT)/lib
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(OUT)/agent/%.o: agent/%.c agent/*.h lib/*.h bpf/flow.h $(SKELS) $(PROTO_H) | $(OUT)/agent
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(OUT)/collector/%.o: collector/%.c collector/*.h lib/*.h $(PROTO_H) | $(OUT)/collector
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(OUT)/slo/%.o: slo/%.c slo/*.h lib/*.h | $(OUT)/slo
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Islo -c $< -o $@

$(OUT)/flowlens-slo: $(SLO_OBJS) $(OUT)/lib/expo.o $(OUT)/lib/optparse.o
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ -lyaml -lm -o $@

$(OUT)/flowlens-collector: $(COLL_OBJS) $(LIB_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(OUT)/flowlens-agent: $(AGENT_OBJS) $(LIB_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# The agent's drain: kernel reading (flowtab) and the kernel-free attribution core.
DRAIN_OBJS := $(OUT)/agent/flowtab.o $(OUT)/agent/attrib.o $(OUT)/agent/outcome.o

$(OUT)/flowlens-bench: bench/bench.c $(OUT)/agent/attach.o $(DRAIN_OBJS) $(LIB_OBJS) \
		$(SKELS) bpf/flow.h | $(OUT)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(filter %.c %.o,$^) $(LDFLAGS) $(LDLIBS) -o $@

TEST_BPF_SRCS := tests/unit/test_bpf.c tests/unit/test_slots.c tests/unit/test_wakeup.c \
		tests/unit/test_h2bpf.c \
		tests/unit/bpf_env.c
$(OUT)/test-bpf: $(TEST_BPF_SRCS) tests/unit/bpf_env.h tests/unit/pkt.h tests/unit/check.h \
		$(SKELS) bpf/flow.h $(DRAIN_OBJS) $(OUT)/agent/probe.o $(LIB_OBJS) | $(OUT)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Itests/unit $(TEST_BPF_SRCS) $(DRAIN_OBJS) $(OUT)/agent/probe.o \
		$(LIB_OBJS) $(LDFLAGS) $(LDLIBS) -o $@

$(OUT)/test-unit: tests/unit/test_unit.c tests/unit/test_attrib.c tests/unit/test_vocab.c \
		tests/unit/test_store.c tests/unit/test_h2.c \
		tests/unit/check.h $(filter-out $(OUT)/agent/main.o,$(AGENT_OBJS)) \
		$(filter-out $(OUT)/collector/main.o,$(COLL_OBJS)) $(LIB_OBJS)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Itests/unit $(filter-out %.h,$^) $(LDFLAGS) $(LDLIBS) -o $@

$(OUT)/collector-bench: bench/collector_bench.c $(filter-out $(OUT)/collector/main.o,$(COLL_OBJS)) \
		$(LIB_OBJS) | $(OUT)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDFLAGS) $(LDLIBS) -o $@

# A bench tool, not a test: simulated agents against a real collector (bench/loadsim.sh).
$(OUT)/flowlens-loadsim: bench/loadsim.c $(OUT)/agent/export.o $(LIB_OBJS) | $(OUT)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDFLAGS) $(LDLIBS) -o $@

$(OUT)/mkbatch: tests/tools/mkbatch.c $(LIB_OBJS) | $(OUT)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDFLAGS) $(LDLIBS) -o $@

deps:
	$(Q)scripts/deps.sh

# Rules for the SLO files in deploy/slo, as a plain rule file (Prometheus, Amazon Managed
# Service for Prometheus) and as a PrometheusRule; tests/slo/run.sh checks they are current.
# Grafana dashboards from grafana/generate.mjs.
dashboards:
	$(Q)node grafana/generate.mjs

# The kustomize base is the Helm chart rendered with its defaults.
deploy-manifests:
	$(Q)scripts/render-deploy.sh

slo-rules: $(OUT)/flowlens-slo
	$(Q)$(OUT)/flowlens-slo deploy/slo/*.yaml -o deploy/prometheus/slo-rules.yaml
	$(Q)$(OUT)/flowlens-slo -f prometheusrule --name flowlens-slos deploy/slo/*.yaml \
		-o deploy/kustomize/slo/prometheusrule.yaml

FORMAT_SRCS = $(shell git ls-files '*.c' '*.h')
# Fuzz target for the collector's decode path (clang libFuzzer + ASan/UBSan).
$(OUT)/fuzz-decode: tests/fuzz/fuzz_decode.c lib/wire.c collector/store.c collector/signals.c \
		collector/render.c collector/snapshot.c collector/labels.c collector/meta.c collector/meta_apply.c \
		$(OUT)/proto/flowlens.pb-c.c lib/*.h collector/*.h $(PROTO_H) | $(OUT)
	$(call msg,FUZZ,$@)
	$(Q)clang -g -O1 -fsanitize=fuzzer,address,undefined -I$(OUT)/proto -Ilib -Ibpf -Icollector \
		$(filter %.c,$^) lib/expo.c lib/ipproto.c lib/vocab.c lib/addr.c -lprotobuf-c -lz -ljson-c -o $@

# Fuzz target for the agent's HTTP/2 decoder (clang libFuzzer + ASan/UBSan).
$(OUT)/fuzz-h2: tests/fuzz/fuzz_h2.c agent/h2.c agent/h2.h bpf/flow.h lib/vocab.h | $(OUT)
	$(call msg,FUZZ,$@)
	$(Q)clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Ilib -Ibpf -Iagent \
		$(filter %.c,$^) -lnghttp2 -o $@

check-format:
	$(call msg,FORMAT,check)
	$(Q)clang-format --dry-run --Werror $(FORMAT_SRCS)

format:
	$(Q)clang-format -i $(FORMAT_SRCS)

# The README's two commands. Each installs missing packages first (idempotent), builds, then
# runs. Both need root: BPF programs and network namespaces.
test:
	$(Q)scripts/deps.sh
	$(Q)$(MAKE) --no-print-directory all check-format
	$(Q)tests/run

demo:
	$(Q)scripts/deps.sh
	$(Q)$(MAKE) --no-print-directory all
	$(Q)scripts/demo.sh

# The agent, collector and test-bpf cross-built for arm64 (Graviton), for the kernel matrix's
# arm64 guest. The BPF objects in them are the same as amd64's (CO-RE, no arch-specific code).
arm64:
	$(Q)$(MAKE) --no-print-directory OUT=$(OUT)/arm64 CC=aarch64-linux-gnu-gcc \
		$(OUT)/arm64/flowlens-agent $(OUT)/arm64/flowlens-collector $(OUT)/arm64/flowlens-slo \
		$(OUT)/arm64/test-bpf

# The OCI image for amd64 and arm64 (scripts/image.sh: Debian packages unpacked by mmdebstrap,
# buildah, no Docker): OUT/image/flowlens-VERSION.oci.tar and localhost/flowlens:VERSION.
image: $(OUT)/flowlens-agent $(OUT)/flowlens-collector $(OUT)/flowlens-slo arm64
	$(Q)scripts/image.sh $(OUT) $(VERSION)

# The kernel matrix alone (tests/run runs it too): this machine's kernel and Debian's cloud
# kernels 5.10, 6.1, 6.12 under QEMU. KERNELS="bullseye host" picks some.
kernel-matrix:
	$(Q)scripts/deps.sh
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tests/kernels/run.sh

# The host end-to-end tests for attach and translation (flows, lifecycle, identity, signals,
# netpol) on a stock Debian 12: its 6.1 cloud kernel under QEMU, its own tools (docs/kernels.md).
debian12:
	$(Q)scripts/deps.sh
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tests/kernels/debian12.sh

# docs/flow-map.png (the README's picture) from the demo, drawn with Grafana's libraries.
readme-picture:
	$(Q)scripts/deps.sh
	$(Q)$(MAKE) --no-print-directory all
	$(Q)scripts/readme-picture.sh

# The full 10-minute soak (the suite runs it for SOAK_SECONDS=150).
soak:
	$(Q)scripts/deps.sh
	$(Q)$(MAKE) --no-print-directory all
	$(Q)SOAK_SECONDS=$${SOAK_SECONDS:-600} tests/e2e/soak.sh

bench:
	$(Q)scripts/deps.sh
	$(Q)$(MAKE) --no-print-directory all
	$(Q)bench/run

clean:
	$(Q)rm -rf $(OUT)
