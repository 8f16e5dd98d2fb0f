# gomta — the one entry point for building, testing and running.
GO        ?= go
BIN       ?= bin
FUZZTIME  ?= 20s
BENCHTIME ?= 1s
PKGS      := ./...

.PHONY: all build test test-short stress check fmt vet run fuzz bench bench-peers bench-allpeers clean clean-data distclean

all: check build test

build:
	$(GO) build -o $(BIN)/ ./cmd/...

## test: every test, race detector on, in random order; the interop tests
## (Python smtplib/poplib, swaks, net/smtp, crash test) are Go tests that run here too.
## Then the end-to-end suites again on the jetstream backend (each mtad on a
## one-node embedded NATS JetStream cluster, replicas 1; see mta/mtatest.Backend).
## The TestCluster* tests write their own cluster configs whatever the backend:
## the first pass ran them already.
E2E_PKGS := ./cmd/mtad/ ./cmd/mtactl/ ./cmd/mtaload/ ./cmd/mtalog/
test:
	$(GO) test -race -shuffle=on -timeout 15m $(PKGS)
	GOMTA_TEST_BACKEND=jetstream $(GO) test -race -shuffle=on -timeout 15m -skip '^TestCluster' $(E2E_PKGS)

## stress: the long proofs: 100 sending sessions with five SIGKILLs (zero lost),
## SIGTERM under 100 sessions (every client sees its reply or a 421), SIGKILL of one cluster node
## of three during 1,000 messages from 51 sessions (every acked message once).
stress:
	GOMTA_STRESS=1 $(GO) test -race -count=1 -timeout 30m -run 'Crash|Graceful|DiskFull|Leak|ClusterKillNode' -v ./cmd/mtad/ ./session/...

test-short:
	$(GO) test -short $(PKGS)

check: vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

## run: the daemon on its built-in default config (two mail hosts that mail each other).
run: build
	$(BIN)/mtad -log-format console

## fuzz: every fuzz target for FUZZTIME each (default 20s).
fuzz:
	@set -e; for f in $$(grep -l '^func Fuzz' $$(git ls-files '*_test.go')); do \
	  dir=./$$(dirname $$f); \
	  for t in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' $$f | sed 's/func //'); do \
	    echo "== $$dir $$t ($(FUZZTIME))"; \
	    $(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) $$dir; \
	  done; \
	done

bench:
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) $(PKGS)

## bench-peers: gomta side by side with its peers (root, Debian 12; ~25 min): first
## bench/peers.sh (installs Postfix and Dovecot; W2, W3, W5-W7 against Postfix and Dovecot
## with mtaload), then bench/allpeers/run.sh (W1 against Postfix, chasquid, maddy,
## OpenSMTPD, Exim and smtp-sink with smtp-source, CPU per message, W8 relay, W9 open
## loop, system calls, fsync audit). PEERS_ONLY= runs every peers.sh workload (+~5 min).
PEERS_ONLY ?= w2,w3,w5,w6,w7
bench-peers:
	ONLY=$(PEERS_ONLY) bash bench/peers.sh all
	bash bench/allpeers/run.sh

## bench-allpeers: only the every-peer part (needs Postfix: bash bench/peers.sh install).
bench-allpeers:
	bash bench/allpeers/run.sh

## bench-cluster: W1-like SMTP load (1 KiB, a new connection per message, 20 sessions)
## against one node (local; jetstream R1 with sync_always off and on) and a three-node
## embedded cluster (R3, sync_always off and on), alternated over ROUNDS rounds (~8 min):
## bench/results/cluster-<date>.{txt,json}. N, ROUNDS, CASES pass through the environment.
.PHONY: bench-cluster
bench-cluster:
	bash bench/cluster/run.sh

## clean: the built binaries only. The demo's mail and queue in ./var stay.
clean:
	rm -rf $(BIN)

## clean-data: DELETES ./var, the demo's spool and every mailbox in it.
clean-data:
	@if [ -d var ]; then \
	  echo "clean-data: deleting ./var: the queued messages and mailboxes of 'make run' are lost"; \
	  rm -rf var; \
	fi

## distclean: clean and clean-data.
distclean: clean clean-data
