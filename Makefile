# peerpigeon-c. `make` builds ./peerpigeon; `make test` builds the sanitizer builds and runs
# every test (installing Node test tools into .deps/ when missing); `make static` writes
# build/peerpigeon-static with musl-gcc (as root on Debian it installs musl-tools).
CC ?= cc
WARN = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wstrict-prototypes -Wvla -Werror
CFLAGS ?= -O2
SAN = -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
VERSION = 0.1.0
SRCS = peerpigeon.c peer.c hub.c conn.c dns.c ws.c http.c json.c
HDRS = $(wildcard *.h)
UNITS = build/test_ws build/test_http build/test_json build/test_dns build/test_peer build/test_hub

# TLS=1: the same server with wss:// hub links (tls.c over BearSSL, Debian's libbearssl-dev 0.6,
# linked from its static library, so the binary still needs only libc at run time). Applies to
# ./peerpigeon, `make static`, build/peerpigeon-asan and -smallq; build/peerpigeon-tls and
# build/peerpigeon-tls-asan are the TLS build whatever TLS says. build/.tls remembers the last
# TLS= so that switching rebuilds. Unit tests and the default build never see PP_TLS.
TLS ?= 0
TLS_CFLAGS = -DPP_TLS -I/usr/include/bearssl
BEARSSL_A = $(or $(wildcard /usr/lib/$(shell $(CC) -dumpmachine)/libbearssl.a /usr/lib/libbearssl.a),\
	$(error the TLS build needs BearSSL: apt-get install libbearssl-dev))
TLS_TARGETS = peerpigeon build/peerpigeon-static build/peerpigeon-asan build/peerpigeon-smallq
ifeq ($(TLS),1)
$(TLS_TARGETS): WARN += $(TLS_CFLAGS)
$(TLS_TARGETS): SRCS += tls.c $(BEARSSL_A)
$(TLS_TARGETS): tls.c
endif
$(shell mkdir -p build && { echo '$(TLS)' | cmp -s - build/.tls || echo '$(TLS)' > build/.tls; })
$(TLS_TARGETS): build/.tls

all: peerpigeon

peerpigeon: $(SRCS) $(HDRS)
	$(CC) $(WARN) $(CFLAGS) -DPP_VERSION='"$(VERSION)"' -o $@ $(SRCS) $(LDFLAGS)

# static musl build into build/peerpigeon-static; never touches ./peerpigeon. No unwind tables
# (C, no exceptions; stripped anyway) and unused sections dropped: about 20 KB less.
# Without musl-gcc: as root on Debian, deploy/build-static.sh --ensure installs musl-tools;
# otherwise it says what to install and the build stops.
STATIC_FLAGS = -Os -static -s -fno-asynchronous-unwind-tables -fno-unwind-tables \
	-ffunction-sections -fdata-sections -Wl,--gc-sections
static: build/peerpigeon-static

build/peerpigeon-static: $(SRCS) $(HDRS) | build
	@command -v musl-gcc >/dev/null || bash deploy/build-static.sh --ensure musl-tools
	musl-gcc $(WARN) $(STATIC_FLAGS) -DPP_VERSION='"$(VERSION)"' -o $@ $(SRCS)

build:
	mkdir -p build

build/peerpigeon-asan: $(SRCS) $(HDRS) | build
	$(CC) $(WARN) $(SAN) -DPP_VERSION='"$(VERSION)"' -o $@ $(SRCS)

# the same with a 64 KiB fixed output-queue cap, for test/queue.js
build/peerpigeon-smallq: $(SRCS) $(HDRS) | build
	$(CC) $(WARN) $(SAN) -DWBUF_BASE=65536 -DPP_VERSION='"$(VERSION)"' -o $@ $(SRCS)

build/peerpigeon-tls: $(SRCS) tls.c $(HDRS) | build
	$(CC) $(WARN) $(TLS_CFLAGS) $(CFLAGS) -DPP_VERSION='"$(VERSION)"' -o $@ $(SRCS) tls.c $(BEARSSL_A) $(LDFLAGS)

build/peerpigeon-tls-asan: $(SRCS) tls.c $(HDRS) | build
	$(CC) $(WARN) $(TLS_CFLAGS) $(SAN) -DPP_VERSION='"$(VERSION)"' -o $@ $(SRCS) tls.c $(BEARSSL_A)

build/test_ws: test/test_ws.c ws.c ws.h test/t.h | build
	$(CC) $(WARN) $(SAN) -I. -o $@ test/test_ws.c ws.c

build/test_json: test/test_json.c json.c json.h test/t.h | build
	$(CC) $(WARN) $(SAN) -I. -o $@ test/test_json.c json.c

build/test_http: test/test_http.c http.c json.c http.h json.h test/t.h | build
	$(CC) $(WARN) $(SAN) -I. -o $@ test/test_http.c http.c json.c

build/test_dns: test/test_dns.c dns.c dns.h test/t.h | build
	$(CC) $(WARN) $(SAN) -I. -o $@ test/test_dns.c dns.c

# peer.c and hub.c on test/fake_conn.c, the connection layer without sockets
FAKE = test/fake_conn.c test/fake_conn.h conn.h

build/test_peer: test/test_peer.c peer.c json.c peer.h json.h ws.h $(FAKE) test/t.h | build
	$(CC) $(WARN) $(SAN) -I. -o $@ test/test_peer.c test/fake_conn.c peer.c json.c

build/test_hub: test/test_hub.c hub.c peer.c dns.c http.c json.c ws.c $(HDRS) $(FAKE) test/t.h | build
	$(CC) $(WARN) $(SAN) -I. -o $@ test/test_hub.c test/fake_conn.c hub.c peer.c dns.c http.c json.c ws.c

# every libFuzzer target for FUZZ_SECONDS each, from the seed corpora test/fuzz.sh writes
FUZZ_SECONDS ?= 20

fuzz: | build
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash test/fuzz.sh

unit: $(UNITS)
	@for t in $(UNITS); do ./$$t || exit 1; done

test: peerpigeon build/peerpigeon-asan build/peerpigeon-smallq $(UNITS)
	@bash test/run.sh

fmt:
	clang-format -i *.c *.h test/*.c test/*.h

clean:
	rm -rf build peerpigeon

.PHONY: all static unit test fuzz fmt clean

# Benchmarks (bench/run.sh, ~3 minutes) and the static-size check (musl-gcc, target <= 150 KB);
# both build into build/ and never overwrite ./peerpigeon (static-check checks `make static`'s output).
bench: peerpigeon | build
	@bash bench/run.sh

static-check: build/peerpigeon-static
	@s=$$(stat -c %s build/peerpigeon-static); echo "build/peerpigeon-static: $$s bytes (target <= 153600)"; \
	test $$s -le 153600

.PHONY: bench static-check

# Static musl binaries for x86_64 and aarch64 (build/peerpigeon-x86_64, build/peerpigeon-aarch64)
# from Debian packages only; as root deploy/build-static.sh installs what it needs, and it
# smoke-runs the aarch64 binary under qemu-user when present. Never touches ./peerpigeon.
static-all: $(SRCS) $(HDRS) | build
	SRCS='$(filter-out tls.c $(BEARSSL_A),$(SRCS))' WARN='$(WARN)' STATIC_FLAGS='$(STATIC_FLAGS)' VERSION='$(VERSION)' TLS='$(TLS)' bash deploy/build-static.sh

.PHONY: static-all
