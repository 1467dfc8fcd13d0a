# libnetcore build. `make help` lists the targets and variables.
#
# Everything is found by wildcard: lib/*.c is the library, tests/test_*.c
# one test binary each, examples/*.c one program each, bench/*.c one
# benchmark each. All output goes under $(BUILD).

BUILD ?= build

ifeq ($(origin CC),default)
CC = gcc
endif
PKG_CONFIG ?= pkg-config
LDCONFIG ?= ldconfig
AWK ?= awk
# Captured once so that recipes below can name it without make treating
# them as recursive (which would run them even under make -n).
NC_MAKE := $(MAKE)

# --- version, from the header ------------------------------------------
version_of = $(shell awk '$$2 == "NC_VERSION_$(1)" { print $$3 }' include/netcore.h)
VERSION_MAJOR := $(call version_of,MAJOR)
VERSION_MINOR := $(call version_of,MINOR)
VERSION_PATCH := $(call version_of,PATCH)
ifneq ($(words $(VERSION_MAJOR) $(VERSION_MINOR) $(VERSION_PATCH)),3)
$(error cannot read NC_VERSION_MAJOR/MINOR/PATCH from include/netcore.h)
endif
VERSION := $(VERSION_MAJOR).$(VERSION_MINOR).$(VERSION_PATCH)

# --- install locations ------------------------------------------------
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
MANDIR ?= $(PREFIX)/share/man
BINDIR ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share

# --- flags -------------------------------------------------------------
# CFLAGS is the tunable part; the language, warnings and include paths
# always apply. SAN_FLAGS is set by the sanitize and tsan targets.
CFLAGS ?= -O2 -g
WARNINGS = -Wall -Wextra -Wpedantic $(if $(filter 1,$(WERROR)),-Werror)
NC_CFLAGS = -std=c11 -D_GNU_SOURCE $(CFLAGS) $(WARNINGS) -Iinclude -iquote lib \
            $(SAN_FLAGS) $(TLS_CFLAGS) $(URING_CFLAGS) $(CARES_CFLAGS) $(CPPFLAGS)
LIB_CFLAGS = -fPIC -fvisibility=hidden
DEPFLAGS = -MMD -MP
COMPILE = $(CC) $(NC_CFLAGS) $(DEPFLAGS)
SAN_FLAGS ?=
# Sanitizer runtimes are not always linked into shared objects (clang),
# so --no-undefined is dropped for sanitized builds.
SO_LDFLAGS ?= -Wl,--no-undefined
NC_LDFLAGS = $(LDFLAGS) $(SAN_FLAGS)

ASAN_FLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer \
             -fno-sanitize-recover=all
TSAN_FLAGS = -fsanitize=thread -fno-omit-frame-pointer
# --fair-sched=yes: valgrind runs one thread at a time, and without it a
# thread that polls (a counter reader) starves the loops it waits for.
VALGRIND = valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect \
           --error-exitcode=99 --trace-children=no --fair-sched=yes

# --- optional dependencies -----------------------------------------------
# $(call check_choice,VAR): stop unless VAR is auto, yes or no.
check_choice = $(if $(filter-out 1,$(words $($(1))) $(words $(filter auto yes no,$($(1))))),\
    $(error $(1)=$($(1)) is not a choice: use $(1)=auto (the default: build it in when \
    pkg-config finds it), $(1)=yes (stop without it) or $(1)=no (leave it out)))

# TLS comes from OpenSSL 3 (Debian's libssl-dev) when pkg-config finds it:
# TLS=auto (the default) builds it in then, TLS=no never, TLS=yes or stop.
# Without it lib/tls_none.c stands in and the TLS calls return -ENOTSUP,
# saying why (NC_TLS_OFF: it was switched off).
TLS ?= auto
$(call check_choice,TLS)
ifneq ($(TLS),no)
HAVE_TLS := $(shell $(PKG_CONFIG) --exists 'openssl >= 3' 2>/dev/null && echo 1)
endif
ifeq ($(TLS)$(HAVE_TLS),yes)
$(error TLS=yes, but pkg-config finds no OpenSSL 3: apt-get install libssl-dev)
endif
TLS_CFLAGS := $(if $(HAVE_TLS),$(shell $(PKG_CONFIG) --cflags openssl),$(if $(filter no,$(TLS)),-DNC_TLS_OFF))
TLS_LEFT_OUT := $(strip $(if $(HAVE_TLS),,$(if $(filter no,$(TLS)),switched off (TLS=no),\
    pkg-config finds no OpenSSL 3 (apt-get install libssl-dev)); the TLS calls return -ENOTSUP))
TLS_LIBS := $(if $(HAVE_TLS),$(shell $(PKG_CONFIG) --libs openssl))
# Tests that speak TLS themselves (test_reentry's OpenSSL peers) compile
# that part only when the library, and so the link, has OpenSSL.
TEST_CFLAGS := $(if $(HAVE_TLS),-DNC_TEST_HAVE_TLS)
REQUIRES_PRIVATE := $(if $(HAVE_TLS),openssl)
LIB_EXCLUDED := $(if $(HAVE_TLS),lib/tls_none.c,lib/tls.c lib/tls_ctx.c)

# io_uring comes from liburing (Debian's liburing-dev) when pkg-config
# finds it: URING=auto (the default) builds the io_uring backend in then,
# URING=no never, URING=yes or stop. Without it every loop runs on epoll
# and asking for io_uring returns -ENOTSUP.
URING ?= auto
$(call check_choice,URING)
ifneq ($(URING),no)
HAVE_URING := $(shell $(PKG_CONFIG) --exists liburing 2>/dev/null && echo 1)
endif
ifeq ($(URING)$(HAVE_URING),yes)
$(error URING=yes, but pkg-config finds no liburing: apt-get install liburing-dev)
endif
URING_CFLAGS := $(if $(HAVE_URING),-DNC_HAVE_URING $(shell $(PKG_CONFIG) --cflags liburing))
URING_LIBS := $(if $(HAVE_URING),$(shell $(PKG_CONFIG) --libs liburing))
REQUIRES_PRIVATE += $(if $(HAVE_URING),liburing)
LIB_EXCLUDED += $(if $(HAVE_URING),,lib/backend_uring.c lib/conn_ring.c)
URING_LEFT_OUT := $(strip $(if $(HAVE_URING),,$(if $(filter no,$(URING)),switched off (URING=no),\
    pkg-config finds no liburing (apt-get install liburing-dev)); every loop runs on epoll))
# Host names are looked up with c-ares (Debian's libc-ares-dev) when
# pkg-config finds it: CARES=auto (the default) builds it in then,
# CARES=no never, CARES=yes or stop. c-ares resolves inside the loop (its
# sockets watched, its timeouts on the loop's timers); without it
# lib/resolve_thread.c stands in, running getaddrinfo() on helper threads
# that post the answers back, so that the loop never blocks either way.
CARES ?= auto
$(call check_choice,CARES)
ifneq ($(CARES),no)
HAVE_CARES := $(shell $(PKG_CONFIG) --exists libcares 2>/dev/null && echo 1)
endif
ifeq ($(CARES)$(HAVE_CARES),yes)
$(error CARES=yes, but pkg-config finds no c-ares: apt-get install libc-ares-dev)
endif
CARES_CFLAGS := $(if $(HAVE_CARES),-DNC_HAVE_CARES $(shell $(PKG_CONFIG) --cflags libcares))
CARES_LIBS := $(if $(HAVE_CARES),$(shell $(PKG_CONFIG) --libs libcares))
REQUIRES_PRIVATE += $(if $(HAVE_CARES),libcares)
LIB_EXCLUDED += $(if $(HAVE_CARES),lib/resolve_thread.c,lib/resolve_ares.c lib/hosts.c)
CARES_LEFT_OUT := $(strip $(if $(HAVE_CARES),,$(if $(filter no,$(CARES)),switched off (CARES=no),\
    pkg-config finds no c-ares (apt-get install libc-ares-dev)); names are looked up with getaddrinfo on helper threads))
# What the library links with, beyond libc and pthreads.
DEP_LIBS = $(TLS_LIBS) $(URING_LIBS) $(CARES_LIBS)

# Evaluated only when a recipe needs them, after `deps` has run.
CMOCKA_CFLAGS = $(shell $(PKG_CONFIG) --cflags cmocka)
CMOCKA_LIBS = $(shell $(PKG_CONFIG) --libs cmocka)
BENCH_CFLAGS = $(shell $(PKG_CONFIG) --cflags libuv libevent libevent_openssl openssl)
# libev's shared library also defines libevent's function names
# (event_add, event_base_new, ...): -levent must come before -lev, or
# bench_echo_libevent links against libev's versions and fails.
# bench_tls_* also need libevent_openssl and OpenSSL's own flags.
BENCH_LIBS = $(shell $(PKG_CONFIG) --libs libuv libevent libevent_openssl openssl) -lev

# --- what gets built --------------------------------------------------
OBJ = $(BUILD)/obj

LIB_SRCS := $(sort $(filter-out $(LIB_EXCLUDED),$(wildcard lib/*.c)))
LIB_OBJS := $(LIB_SRCS:%.c=$(OBJ)/%.o)

STATIC = $(BUILD)/lib/libnetcore.a
SONAME = libnetcore.so.$(VERSION_MAJOR)
SHARED_FILE = libnetcore.so.$(VERSION)
SHARED = $(BUILD)/lib/$(SHARED_FILE)
SHARED_SONAME = $(BUILD)/lib/$(SONAME)
SHARED_LINK = $(BUILD)/lib/libnetcore.so
PC = $(BUILD)/libnetcore.pc

COMMON_OBJS := $(patsubst %.c,$(OBJ)/%.o,$(sort $(wildcard examples/common/*.c)))
SUPPORT_OBJ := $(patsubst %.c,$(OBJ)/%.o,$(wildcard tests/support.c tests/proc.c tests/dnsworld.c))

# test_differential's peer speaks TLS through OpenSSL itself: a build
# without TLS (TLS=no, or no libssl-dev) leaves it out.
TEST_SRCS := $(sort $(filter-out $(if $(HAVE_TLS),,tests/test_differential.c),\
                                 $(wildcard tests/test_*.c)))
TEST_BINS := $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)
STRESS_SRCS := $(sort $(wildcard tests/stress_*.c))
STRESS_BINS := $(STRESS_SRCS:tests/%.c=$(BUILD)/tests/%)
EXAMPLE_SRCS := $(sort $(wildcard examples/*.c))
EXAMPLE_BINS := $(EXAMPLE_SRCS:examples/%.c=$(BUILD)/bin/%)
BENCH_SRCS := $(sort $(wildcard bench/*.c))
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)

# The man pages and docs/api.md are generated from include/netcore.h by
# docs/gen-docs.awk into $(DOC_OUT): man3/<function>.3, man3/netcore.3,
# man3/libnetcore.3 (a .so link) and api.md. The page names come from the
# header, so uninstall needs no build.
DOC_OUT = $(BUILD)/doc
DOC_STAMP = $(DOC_OUT)/.stamp
DOC_EXAMPLES := $(sort $(wildcard docs/examples/*.c))
MAN_NAMES = $(shell $(AWK) -v mode=list -f docs/gen-docs.awk include/netcore.h)
MAN_PAGES = $(addprefix $(DOC_OUT)/man3/,$(MAN_NAMES))
# The date the man pages show: the header's last commit, if there is git.
DOC_DATE = $(shell git log -1 --format=%cs -- include/netcore.h 2>/dev/null)

ALL_OBJS := $(LIB_OBJS) $(COMMON_OBJS) $(SUPPORT_OBJ) \
            $(TEST_SRCS:%.c=$(OBJ)/%.o) $(EXAMPLE_SRCS:%.c=$(OBJ)/%.o) \
            $(STRESS_SRCS:%.c=$(OBJ)/%.o) \
            $(BENCH_SRCS:%.c=$(OBJ)/%.o)

# Test binaries whose source starts threads (itself or through
# nc_workers_start), or drives an example program with --threads (those
# run sanitized too), or looks names up against dnsmasq (a SERVFAIL
# responder thread; getaddrinfo threads without c-ares): the ones `make
# tsan` runs.
# The differential scenarios start no thread, yet run here too: they are
# the widest sweep of the read, write and close paths, and a TSan build
# (other code generation, other timing) is one more way to shake them.
TSAN_TESTS = $(patsubst tests/%.c,$(BUILD)/tsan/tests/%,\
             $(if $(TEST_SRCS),$(shell grep -lE 'pthread_create|nc_workers_start|"--threads"|dnsmasq_start' $(TEST_SRCS)) \
             $(filter tests/test_differential.c,$(TEST_SRCS))))

TEST_PACKAGES = libcmocka-dev pkg-config iproute2 nftables valgrind groff-base man-db \
                libssl-dev openssl curl liburing-dev socat testssl.sh \
                libc-ares-dev dnsmasq-base
# ab (apache2-utils), strace and valgrind drive bench/churn.sh and
# bench/callgrind.sh; nginx-light is optional (churn.sh skips its rows);
# haproxy and socat are the peers of bench/proxy.sh.
BENCH_PACKAGES = libuv1-dev libev-dev libevent-dev wrk apache2-utils strace \
                 valgrind nginx-light libssl-dev openssl dnsmasq-base haproxy socat

# Every test binary runs once per backend built in (epoll, io_uring).
TEST_BACKENDS = epoll $(if $(HAVE_URING),io_uring)
RUN_TESTS = NC_BUILD='$(BUILD)' NC_CC='$(CC)' NC_MAKE='$(NC_MAKE)' \
            NC_TEST_BACKENDS='$(TEST_BACKENDS)' bash tests/run-tests.sh

.PHONY: all lib examples tests check check-run stress stress-run deps sanitize tsan valgrind \
        valgrind-run bench \
        bench-deps demo install uninstall pc clean help mutate man api-md
.DEFAULT_GOAL := all

all: lib examples man

lib: $(STATIC) $(SHARED_LINK)

examples: $(EXAMPLE_BINS)

tests: $(TEST_BINS)

# --- compiling and linking ---------------------------------------------
# Objects are rebuilt when the compiler or flags change, not only when a
# source or header does: the stamp is rewritten (at parse time, so that
# make -n stays accurate) only when its text differs.
FLAGS_STAMP = $(BUILD)/.cflags
FLAGS_TEXT = $(CC) $(NC_CFLAGS) $(LIB_CFLAGS) $(TEST_CFLAGS)
NO_BUILD_GOALS = clean help uninstall deps bench-deps
ifneq ($(or $(if $(MAKECMDGOALS),,all),$(filter-out $(NO_BUILD_GOALS),$(MAKECMDGOALS))),)
$(shell mkdir -p '$(BUILD)' && { printf '%s\n' '$(FLAGS_TEXT)' | cmp -s - '$(FLAGS_STAMP)' || \
    printf '%s\n' '$(FLAGS_TEXT)' > '$(FLAGS_STAMP)'; })
endif
$(FLAGS_STAMP):
	@mkdir -p $(@D)
	@printf '%s\n' '$(FLAGS_TEXT)' > $@

# What the library leaves out, said once per build directory and choice:
# the stamp is remade (and the lines printed) when the flags change.
FEATURES_STAMP = $(BUILD)/.left-out
$(FEATURES_STAMP): $(FLAGS_STAMP)
	@$(if $(TLS_LEFT_OUT),echo 'make: built without TLS: $(TLS_LEFT_OUT)';) \
	 $(if $(URING_LEFT_OUT),echo 'make: built without io_uring: $(URING_LEFT_OUT)';) \
	 $(if $(CARES_LEFT_OUT),echo 'make: built without c-ares: $(CARES_LEFT_OUT)';) \
	 touch $@

$(OBJ)/lib/%.o: lib/%.c $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(COMPILE) $(LIB_CFLAGS) -c $< -o $@

# Tests need cmocka and the bench its peers: their objects wait for the
# install step (order-only, so it runs first even with -j).

$(OBJ)/tests/%.o: tests/%.c $(FLAGS_STAMP) | deps
	@mkdir -p $(@D)
	$(COMPILE) $(CMOCKA_CFLAGS) $(TEST_CFLAGS) -c $< -o $@

$(OBJ)/bench/%.o: bench/%.c $(FLAGS_STAMP) | bench-deps
	@mkdir -p $(@D)
	$(COMPILE) $(BENCH_CFLAGS) -c $< -o $@

$(OBJ)/examples/%.o: examples/%.c $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(COMPILE) -c $< -o $@

$(STATIC): $(LIB_OBJS) $(FEATURES_STAMP)
	@mkdir -p $(@D)
	@rm -f $@
	$(AR) rcs $@ $(LIB_OBJS)

$(SHARED): $(LIB_OBJS) $(FEATURES_STAMP)
	@mkdir -p $(@D)
	@test -n '$(LIB_OBJS)' || { echo 'make: no sources in lib/*.c' >&2; exit 1; }
	$(CC) -shared -Wl,-soname,$(SONAME) $(SO_LDFLAGS) $(NC_LDFLAGS) \
	    -o $@ $(LIB_OBJS) $(DEP_LIBS) -pthread

$(SHARED_SONAME): $(SHARED)
	ln -sf $(SHARED_FILE) $@

$(SHARED_LINK): $(SHARED_SONAME)
	ln -sf $(SONAME) $@

$(BUILD)/tests/%: $(OBJ)/tests/%.o $(SUPPORT_OBJ) $(COMMON_OBJS) $(STATIC) | deps
	@mkdir -p $(@D)
	$(CC) $(NC_LDFLAGS) $(TEST_LDFLAGS) -o $@ $< $(SUPPORT_OBJ) $(COMMON_OBJS) \
	    $(STATIC) $(DEP_LIBS) $(CMOCKA_LIBS) -pthread

# test_oom makes the library's allocations fail on purpose.
$(BUILD)/tests/test_oom: TEST_LDFLAGS = -Wl,--wrap=malloc,--wrap=realloc,--wrap=calloc
# test_ring makes io_uring_enter fail on purpose (with liburing only).
RING_WRAP = -Wl,--wrap=io_uring_submit_and_wait_timeout
$(BUILD)/tests/test_ring: TEST_LDFLAGS = $(if $(HAVE_URING),$(RING_WRAP))

# Examples link like any program using the installed library would, with
# an rpath so they run from the build tree.
$(BUILD)/bin/%: $(OBJ)/examples/%.o $(COMMON_OBJS) $(SHARED_LINK)
	@mkdir -p $(@D)
	$(CC) $(NC_LDFLAGS) -o $@ $< $(COMMON_OBJS) -L$(BUILD)/lib -lnetcore \
	    -Wl,-rpath,'$$ORIGIN/../lib' -pthread

$(BUILD)/bench/%: $(OBJ)/bench/%.o $(STATIC) | bench-deps
	@mkdir -p $(@D)
	$(CC) $(NC_LDFLAGS) -o $@ $< $(STATIC) $(DEP_LIBS) $(BENCH_LIBS) -pthread

# Objects reached only through pattern rules would otherwise be deleted as
# intermediates and rebuilt every time.
.SECONDARY: $(ALL_OBJS)

-include $(wildcard $(ALL_OBJS:.o=.d))

# --- dependencies from Debian ------------------------------------------
# $(call apt_install,PACKAGES,WHY): as root, install PACKAGES (refreshing
# the package lists first only when apt does not know them, or when the
# install fails on stale lists); otherwise stop and print the command.
define apt_install
if [ "$$(id -u)" != 0 ]; then \
    echo "make: $(2) missing; as root, run:" >&2; \
    echo "  apt-get update && apt-get install -y --no-install-recommends $(1)" >&2; \
    exit 1; \
fi; \
export DEBIAN_FRONTEND=noninteractive; \
if ! apt-cache show $(1) >/dev/null 2>&1; then apt-get update; fi; \
echo "apt-get install -y --no-install-recommends $(1)"; \
apt-get install -y --no-install-recommends $(1) || \
    { apt-get update && apt-get install -y --no-install-recommends $(1); }
endef

# Debian's haproxy package may start a service of its own: bench/proxy.sh
# starts its own haproxy processes, so that one is stopped, by the PID in
# its pid file (nothing is done when none runs).
define stop_haproxy_service
pid=$$(cat /run/haproxy.pid 2>/dev/null || true); \
if [ -n "$$pid" ] && [ "$$(cat /proc/$$pid/comm 2>/dev/null)" = haproxy ]; then \
    echo "make: stopping the haproxy service (PID $$pid, /run/haproxy.pid): bench/proxy.sh runs its own"; \
    kill "$$pid" || true; \
fi
endef

deps:
	@missing=; \
	command -v $(PKG_CONFIG) >/dev/null 2>&1 || missing="$$missing pkg-config"; \
	$(PKG_CONFIG) --exists cmocka 2>/dev/null || missing="$$missing cmocka"; \
	command -v ip >/dev/null 2>&1 || missing="$$missing ip"; \
	command -v nft >/dev/null 2>&1 || missing="$$missing nft"; \
	command -v valgrind >/dev/null 2>&1 || missing="$$missing valgrind"; \
	$(PKG_CONFIG) --exists 'openssl >= 3' 2>/dev/null || missing="$$missing libssl-dev"; \
	$(PKG_CONFIG) --exists liburing 2>/dev/null || missing="$$missing liburing-dev"; \
	$(PKG_CONFIG) --exists libcares 2>/dev/null || missing="$$missing libc-ares-dev"; \
	command -v dnsmasq >/dev/null 2>&1 || [ -x /usr/sbin/dnsmasq ] || missing="$$missing dnsmasq"; \
	command -v openssl >/dev/null 2>&1 || missing="$$missing openssl"; \
	command -v curl >/dev/null 2>&1 || missing="$$missing curl"; \
	command -v socat >/dev/null 2>&1 || missing="$$missing socat"; \
	command -v testssl >/dev/null 2>&1 || missing="$$missing testssl.sh"; \
	command -v groff >/dev/null 2>&1 || missing="$$missing groff"; \
	command -v man >/dev/null 2>&1 || missing="$$missing man"; \
	if [ -n "$$missing" ]; then \
	    $(call apt_install,$(TEST_PACKAGES),test dependencies ($$missing )); \
	fi

bench-deps:
	@missing=; \
	$(PKG_CONFIG) --exists libuv 2>/dev/null || missing="$$missing libuv"; \
	$(PKG_CONFIG) --exists libevent 2>/dev/null || missing="$$missing libevent"; \
	$(PKG_CONFIG) --exists libevent_openssl 2>/dev/null || missing="$$missing libevent_openssl"; \
	$(PKG_CONFIG) --exists 'openssl >= 3' 2>/dev/null || missing="$$missing libssl-dev"; \
	command -v openssl >/dev/null 2>&1 || missing="$$missing openssl"; \
	printf '#include <ev.h>\n' | $(CC) -E -x c - >/dev/null 2>&1 || missing="$$missing libev"; \
	command -v wrk >/dev/null 2>&1 || missing="$$missing wrk"; \
	for tool in ab strace valgrind socat; do \
	    command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; \
	done; \
	[ -x /usr/sbin/haproxy ] || command -v haproxy >/dev/null 2>&1 || missing="$$missing haproxy"; \
	if [ -n "$$missing" ]; then \
	    $(call apt_install,$(BENCH_PACKAGES),benchmark peers ($$missing )); \
	fi; \
	$(stop_haproxy_service)

# --- running -----------------------------------------------------------
# The binaries are named, so one left behind by a deleted source is not run.
# deps may install libssl-dev, which decides whether TLS is built in: the
# build and the run happen in a make that starts after it.
check: deps
	@$(NC_MAKE) --no-print-directory check-run

check-run: all tests
	@$(RUN_TESTS) $(TEST_BINS)

sanitize: deps
	$(MAKE) --no-print-directory BUILD='$(BUILD)/asan' \
	    SAN_FLAGS='$(ASAN_FLAGS)' SO_LDFLAGS= all tests
	@ASAN_OPTIONS=detect_leaks=1:detect_stack_use_after_return=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    NC_TEST_BACKENDS='$(TEST_BACKENDS)' \
	    NC_BUILD='$(BUILD)/asan' bash tests/run-tests.sh --no-scripts \
	    $(TEST_BINS:$(BUILD)/tests/%=$(BUILD)/asan/tests/%)

# Newer kernels randomise mmap more than some TSan runtimes accept; the
# tests then run with address randomisation off where that is permitted.
tsan: deps
	$(if $(strip $(TSAN_TESTS)),$(MAKE) --no-print-directory BUILD='$(BUILD)/tsan' SAN_FLAGS='$(TSAN_FLAGS)' SO_LDFLAGS= all $(TSAN_TESTS))
	@if [ -z '$(strip $(TSAN_TESTS))' ]; then \
	    echo 'tsan: no tests/test_*.c calls pthread_create; nothing to run'; \
	    echo '0 passed, 0 failed'; exit 0; \
	fi; \
	wrap=; \
	if setarch "$$(uname -m)" -R true 2>/dev/null; then wrap="setarch $$(uname -m) -R"; fi; \
	TSAN_OPTIONS='halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/tsan.supp' NC_TEST_WRAPPER="$$wrap" \
	    NC_TEST_BACKENDS='$(TEST_BACKENDS)' \
	    NC_BUILD='$(BUILD)/tsan' bash tests/run-tests.sh --no-scripts $(TSAN_TESTS)

valgrind: deps
	@$(NC_MAKE) --no-print-directory valgrind-run

# Valgrind cannot follow io_uring (the kernel writes the ring and the
# receive buffers behind its back): the epoll pass only.
valgrind-run: all tests
	@echo 'valgrind: the epoll backend only (valgrind cannot follow io_uring; make sanitize covers it)'
	@NC_UNDER_VALGRIND=1 NC_TEST_WRAPPER='$(VALGRIND)' NC_TEST_TIMEOUT=600 \
	    NC_TEST_BACKENDS=epoll \
	    NC_BUILD='$(BUILD)' bash tests/run-tests.sh --no-scripts $(TEST_BINS)

# Stress programs (tests/stress_*.c, STRESS_BINS, linked like the tests):
# heavy loads with bounds (1 GiB transfers, 10,000 connections), on both
# backends; not part of check.
stress: deps
	@$(NC_MAKE) --no-print-directory stress-run

stress-run: all $(STRESS_BINS)
	@NC_TEST_TIMEOUT=1200 $(RUN_TESTS) --no-scripts $(STRESS_BINS)

# Break the library on purpose, mutant by mutant (tests/mutants.txt), and
# check that a test fails each time. Slow (a rebuild per mutant); not in CI.
mutate: deps
	@CC='$(CC)' bash tests/mutate.sh $(MUTANTS)

# The certificate bench_tls_* serve (tls_load.h looks next to them).
BENCH_TLS_CERTS = $(BUILD)/bench/tls-certs
$(BENCH_TLS_CERTS)/server.pem: tests/tls-certs.sh | bench-deps
	bash tests/tls-certs.sh $(@D)

# churn.sh and callgrind.sh also drive examples/http-hello; workers.sh
# drives http-hello, echo-server and echo-client with 1 and 2 workers;
# backends.sh drives http-hello and echo-server on io_uring and on epoll;
# resolve.sh drives echo-server and dnsmasq in namespaces of its own;
# proxy.sh drives tcp-proxy (against HAProxy and socat) in front of
# http-hello and bench/proxy_load.
bench: bench-deps $(BENCH_BINS) $(BUILD)/bin/http-hello $(BUILD)/bin/echo-server \
       $(BUILD)/bin/echo-client $(BUILD)/bin/tcp-proxy $(BENCH_TLS_CERTS)/server.pem
	@if [ -z '$(BENCH_BINS)' ]; then echo 'make: bench/*.c: no benchmarks to build' >&2; exit 1; fi
	@if [ -f bench/run.sh ]; then \
	    NC_BUILD='$(BUILD)' NC_BENCH_BIN='$(BUILD)/bench' bash bench/run.sh; \
	else \
	    echo 'bench: built $(BENCH_BINS); bench/run.sh does not exist, nothing run'; \
	fi
	@for script in bench/churn.sh bench/callgrind.sh bench/workers.sh bench/backends.sh \
	    bench/resolve.sh bench/proxy.sh; do \
	    NC_BUILD='$(BUILD)' NC_BENCH_BIN='$(BUILD)/bench' bash $$script || exit 1; \
	done

demo: all
	@if [ ! -f examples/demo.sh ]; then \
	    echo 'make demo: examples/demo.sh does not exist; there is no demo to run yet' >&2; \
	    exit 1; \
	fi
	NC_BUILD='$(BUILD)' NC_BIN='$(BUILD)/bin' bash examples/demo.sh

# --- documentation -----------------------------------------------------
# The generator reports comments that break the header's convention but
# writes the pages anyway; tests/check-docs.sh (make check) fails on them.
$(DOC_STAMP): include/netcore.h docs/gen-docs.awk $(DOC_EXAMPLES)
	@rm -rf '$(DOC_OUT)/man3'
	@mkdir -p '$(DOC_OUT)/man3'
	$(AWK) -f docs/gen-docs.awk -v mode=gen -v mandir='$(DOC_OUT)/man3' \
	    -v md='$(DOC_OUT)/api.md' -v version='$(VERSION)' -v date='$(DOC_DATE)' \
	    include/netcore.h
	@touch $@

man: $(DOC_STAMP)

# docs/api.md is committed; this rewrites it from the header.
api-md: $(DOC_STAMP)
	cp '$(DOC_OUT)/api.md' docs/api.md

# --- installing --------------------------------------------------------
# ldconfig runs only for an install into a directory the dynamic linker
# searches (/lib, /usr/lib, or one listed in /etc/ld.so.conf*), without
# DESTDIR, as root. A private PREFIX needs LD_LIBRARY_PATH or an rpath
# (see README.md), which the note says.
define ldconfig_if_searched
if [ -n '$(DESTDIR)' ]; then exit 0; fi; \
libdir=$$(cd '$(LIBDIR)' && pwd -P); \
for d in /lib /usr/lib /lib64 /usr/lib64 $$(sed -e 's/#.*//' -e '/^[[:space:]]*include[[:space:]]/d' \
        /etc/ld.so.conf /etc/ld.so.conf.d/*.conf 2>/dev/null); do \
    if [ -d "$$d" ] && [ "$$(cd "$$d" && pwd -P)" = "$$libdir" ]; then \
        if [ "$$(id -u)" = 0 ]; then echo '$(LDCONFIG)'; $(LDCONFIG) || true; fi; \
        exit 0; \
    fi; \
done; \
echo "note: $(LIBDIR) is not searched by the dynamic linker: run programs with"; \
echo "  LD_LIBRARY_PATH=$(LIBDIR), or link them with -Wl,-rpath,$(LIBDIR)"
endef

pc: | $(BUILD)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
	    -e 's|@REQUIRES_PRIVATE@|$(REQUIRES_PRIVATE)|g' \
	    libnetcore.pc.in > $(PC)

$(BUILD):
	mkdir -p $@

# The directories install puts files in. Those it has to create (and
# their parents) are listed, one per line and without DESTDIR, in
# DIRS_RECORD, so that uninstall removes exactly those, and only when
# empty: never one that was there before. Paths must not hold spaces.
INSTALL_DIRS = $(INCLUDEDIR) $(LIBDIR) $(PKGCONFIGDIR) $(MANDIR)/man3 $(BINDIR) \
               $(DATADIR)/libnetcore
DIRS_RECORD = $(DATADIR)/libnetcore/installed-dirs

define install_dirs
made=; \
for d in $(INSTALL_DIRS); do \
    while [ ! -d '$(DESTDIR)'"$$d" ]; do made="$$made $$d"; d=$$(dirname "$$d"); done; \
done; \
for d in $(INSTALL_DIRS); do install -d '$(DESTDIR)'"$$d" || exit 1; done; \
record='$(DESTDIR)$(DIRS_RECORD)'; \
{ cat "$$record" 2>/dev/null; for d in $$made; do echo "$$d"; done; } | sort -u >"$$record.new" && \
    mv "$$record.new" "$$record"
endef

install: lib pc man $(BUILD)/bin/netcore-doctor
	@$(install_dirs)
	install -m 644 include/netcore.h '$(DESTDIR)$(INCLUDEDIR)/netcore.h'
	install -m 644 $(STATIC) '$(DESTDIR)$(LIBDIR)/libnetcore.a'
	install -m 755 $(SHARED) '$(DESTDIR)$(LIBDIR)/$(SHARED_FILE)'
	ln -sf $(SHARED_FILE) '$(DESTDIR)$(LIBDIR)/$(SONAME)'
	ln -sf $(SONAME) '$(DESTDIR)$(LIBDIR)/libnetcore.so'
	install -m 644 $(PC) '$(DESTDIR)$(PKGCONFIGDIR)/libnetcore.pc'
	install -m 644 $(MAN_PAGES) '$(DESTDIR)$(MANDIR)/man3/'
	install -m 755 $(BUILD)/bin/netcore-doctor '$(DESTDIR)$(BINDIR)/netcore-doctor'
	@$(ldconfig_if_searched)

uninstall:
	rm -f '$(DESTDIR)$(INCLUDEDIR)/netcore.h' \
	    '$(DESTDIR)$(LIBDIR)/libnetcore.a' \
	    '$(DESTDIR)$(LIBDIR)/$(SHARED_FILE)' \
	    '$(DESTDIR)$(LIBDIR)/$(SONAME)' \
	    '$(DESTDIR)$(LIBDIR)/libnetcore.so' \
	    '$(DESTDIR)$(PKGCONFIGDIR)/libnetcore.pc' \
	    '$(DESTDIR)$(BINDIR)/netcore-doctor' \
	    $(foreach m,$(MAN_NAMES),'$(DESTDIR)$(MANDIR)/man3/$(m)')
	@record='$(DESTDIR)$(DIRS_RECORD)'; \
	if [ -f "$$record" ]; then \
	    dirs=$$(sort -r "$$record"); rm -f "$$record"; \
	    for d in $$dirs; do \
	        if rmdir '$(DESTDIR)'"$$d" 2>/dev/null; then echo "rmdir '$(DESTDIR)$$d'"; fi; \
	    done; \
	fi

clean:
	rm -rf '$(BUILD)'

help:
	@echo 'targets:'
	@echo '  all (default)  $(BUILD)/lib/libnetcore.{a,so} and the examples in $(BUILD)/bin'
	@echo '  check          install test dependencies, build, run tests/run-tests.sh'
	@echo '  sanitize       tests under ASan+UBSan in $(BUILD)/asan'
	@echo '  tsan           threaded tests under TSan in $(BUILD)/tsan'
	@echo '  valgrind       tests under valgrind (NC_UNDER_VALGRIND=1)'
	@echo '  stress         tests/stress_*.c: heavy loads (1 GiB through the proxy, 10,000 pairs), both backends'
	@echo '  mutate         break lib/ on purpose (tests/mutants.txt); every mutant must be killed'
	@echo '  bench          build bench/*.c against libuv, libev, libevent; run bench/run.sh,'
	@echo '                 bench/churn.sh, bench/callgrind.sh, bench/workers.sh,'
	@echo '                 bench/backends.sh, bench/resolve.sh and bench/proxy.sh'
	@echo '  demo           build and run examples/demo.sh'
	@echo '  man            the man pages and api.md from include/netcore.h, in $(DOC_OUT)'
	@echo '  api-md         regenerate docs/api.md (committed) from include/netcore.h'
	@echo '  install        the header, both libraries, libnetcore.pc, the man pages and'
	@echo '                 netcore-doctor; uninstall removes them and the directories'
	@echo '                 install made (when empty)'
	@echo '  clean          remove $(BUILD)'
	@echo 'variables: CC=$(CC) CFLAGS=$(CFLAGS) WERROR=1 BUILD=$(BUILD)'
	@echo '  TLS=auto|yes|no    TLS through OpenSSL 3 (libssl-dev): built in when pkg-config'
	@echo '                     finds it (auto), or stop without it (yes), or left out (no);'
	@echo '                     now TLS=$(TLS): $(if $(HAVE_TLS),built in,left out)'
	@echo '  URING=auto|yes|no  the io_uring backend through liburing (liburing-dev), the same;'
	@echo '                     now URING=$(URING): $(if $(HAVE_URING),built in,left out)'
	@echo '  CARES=auto|yes|no  host names looked up inside the loop by c-ares (libc-ares-dev),'
	@echo '                     the same; without it getaddrinfo runs on helper threads;'
	@echo '                     now CARES=$(CARES): $(if $(HAVE_CARES),built in,left out)'
	@echo '  PREFIX=$(PREFIX) LIBDIR=$(LIBDIR) INCLUDEDIR=$(INCLUDEDIR)'
	@echo '  PKGCONFIGDIR=$(PKGCONFIGDIR) MANDIR=$(MANDIR) BINDIR=$(BINDIR)'
	@echo '  DATADIR=$(DATADIR) DESTDIR=$(DESTDIR)'
